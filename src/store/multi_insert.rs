//! The SQLite appender's multi-row INSERTs, written straight into diesel's AST passes.
//!
//! diesel's own batch insert renders the same statement, but every execution walks it as a
//! tree of tuples and value clauses three times (is it cacheable, is it empty, its binds);
//! with the binding itself, that is a large share of SQLite's thread on small blocks
//! (docs/benchmarks.md). [`Insert`] walks a fixed-size chunk of rows as a flat list of
//! binds. Its text is exactly diesel's (a unit test compares the two), it is built once per
//! chunk size and kept in the connection's statement cache under a static query id.

use super::rows::{AddressRow, BlockRow, LogRow};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, SmallInt, Text};
use diesel::sqlite::Sqlite;
use diesel::QueryResult;

/// What a multi-row INSERT writes: its table and columns, what follows the rows, and the
/// values of one row in the columns' order.
pub(crate) trait Shape: 'static {
    type Row;
    /// `INSERT INTO table (columns) VALUES `.
    const HEAD: &'static str;
    /// After the last row (an `ON CONFLICT` clause), or nothing.
    const TAIL: &'static str = "";
    /// Pushes the row's binds, separated by `, `.
    fn values<'b>(row: &'b Self::Row, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()>;
}

/// A multi-row INSERT of `N` rows of shape `S`.
pub(crate) struct Insert<'a, S: Shape, const N: usize>(pub S, pub &'a [S::Row; N]);

/// The query id of [`Insert`]: one per shape and size, so each size is prepared once.
pub(crate) struct InsertId<S, const N: usize>(std::marker::PhantomData<S>);

impl<S: Shape, const N: usize> QueryId for Insert<'_, S, N> {
    type QueryId = InsertId<S, N>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<S: Shape, const N: usize> QueryFragment<Sqlite> for Insert<'_, S, N> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql(S::HEAD);
        for (i, row) in self.1.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { "), (" });
            S::values(row, &mut out)?;
        }
        out.push_sql(")");
        out.push_sql(S::TAIL);
        Ok(())
    }
}

impl<S: Shape, const N: usize, C> diesel::RunQueryDsl<C> for Insert<'_, S, N> {}

/// Pushes each value as a bind of its SQL type, with `, ` between them.
macro_rules! binds {
    ($out:ident, $first_ty:ty: $first:expr $(, $ty:ty: $value:expr)* $(,)?) => {{
        $out.push_bind_param::<$first_ty, _>($first)?;
        $(
            $out.push_sql(", ");
            $out.push_bind_param::<$ty, _>($value)?;
        )*
        Ok(())
    }};
}

/// `log_entries` rows.
pub(crate) struct LogRows;

impl Shape for LogRows {
    type Row = LogRow;
    const HEAD: &'static str = "INSERT INTO `log_entries` (`seq`, `kind`, `block_hash`, `block_height`, \
        `tx_index`, `event_index`, `rollback_of`, `body`, `committed_at`, `type_code`, `contract_key`) VALUES ";

    fn values<'b>(r: &'b LogRow, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        binds!(out,
            BigInt: &r.seq,
            SmallInt: &r.kind,
            Text: &r.block_hash,
            BigInt: &r.block_height,
            Nullable<Integer>: &r.tx_index,
            Nullable<Integer>: &r.event_index,
            Nullable<BigInt>: &r.rollback_of,
            Text: &r.body,
            BigInt: &r.committed_at,
            Nullable<SmallInt>: &r.type_code,
            Nullable<BigInt>: &r.contract_key,
        )
    }
}

/// `address_entries` rows.
pub(crate) struct AddressRows;

impl Shape for AddressRows {
    type Row = AddressRow;
    const HEAD: &'static str = "INSERT INTO `address_entries` (`principal`, `seq`) VALUES ";

    fn values<'b>(r: &'b AddressRow, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        binds!(out, BigInt: &r.principal, BigInt: &r.seq)
    }
}

/// Address rows staged in `address_recent`.
pub(crate) struct RecentAddressRows;

impl Shape for RecentAddressRows {
    type Row = AddressRow;
    const HEAD: &'static str = "INSERT INTO `address_recent` (`principal`, `seq`) VALUES ";

    fn values<'b>(r: &'b AddressRow, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        AddressRows::values(r, out)
    }
}

const BLOCKS_HEAD: &str = "INSERT INTO `blocks` (`block_hash`, `block_height`, `parent_hash`, `canonical`, \
    `last_seq`, `applied_seq`) VALUES ";

fn block_values<'b>(r: &'b BlockRow, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
    binds!(out,
        Text: &r.block_hash,
        BigInt: &r.block_height,
        Nullable<Text>: &r.parent_hash,
        Bool: &r.canonical,
        BigInt: &r.last_seq,
        BigInt: &r.applied_seq,
    )
}

/// `blocks` rows not in the table yet.
pub(crate) struct NewBlocks;

impl Shape for NewBlocks {
    type Row = BlockRow;
    const HEAD: &'static str = BLOCKS_HEAD;

    fn values<'b>(r: &'b BlockRow, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        block_values(r, out)
    }
}

/// `blocks` rows that may be in the table: their state replaces the stored one. A chunk
/// must not name a block twice.
pub(crate) struct BlockUpdates;

impl Shape for BlockUpdates {
    type Row = BlockRow;
    const HEAD: &'static str = BLOCKS_HEAD;
    const TAIL: &'static str = " ON CONFLICT (`block_height`, `block_hash`) DO UPDATE SET \
        `parent_hash` = excluded.`parent_hash`, `canonical` = excluded.`canonical`, \
        `last_seq` = excluded.`last_seq`, `applied_seq` = excluded.`applied_seq`";

    fn values<'b>(r: &'b BlockRow, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        block_values(r, out)
    }
}

#[cfg(test)]
mod tests {
    //! Each [`Insert`] renders exactly the statement and binds of diesel's own batch insert
    //! of the same rows, so the two write the same.
    use super::*;
    use crate::store::schema::{address_entries, address_recent, blocks, log_entries};
    use diesel::upsert::excluded;
    use diesel::{debug_query, ExpressionMethods};

    fn log_rows() -> [LogRow; 3] {
        let row = |seq: i64, event: bool| LogRow {
            seq,
            kind: if event { 1 } else { 3 },
            block_hash: format!("0x{seq:064x}"),
            block_height: seq / 2,
            tx_index: event.then_some(7),
            event_index: event.then_some(seq as i32),
            rollback_of: (!event).then_some(seq - 1),
            body: format!("{{\"seq\":{seq}}}"),
            committed_at: 1_700_000_000 + seq,
            type_code: event.then_some(3),
            contract_key: event.then_some(seq * 10),
        };
        [row(1, false), row(2, true), row(3, true)]
    }

    /// The statement's text and binds, as diesel's debug output shows them.
    macro_rules! rendered {
        ($query:expr) => {
            debug_query::<Sqlite, _>(&$query).to_string()
        };
    }

    fn block_rows() -> [BlockRow; 2] {
        let row = |height: i64, parent: Option<&str>| BlockRow {
            block_hash: format!("0x{height:064x}"),
            block_height: height,
            parent_hash: parent.map(str::to_owned),
            canonical: height % 2 == 0,
            last_seq: height * 3,
            applied_seq: height * 2,
        };
        [row(4, None), row(5, Some("0xab"))]
    }

    #[test]
    fn log_rows_render_as_diesel_does() {
        let rows = log_rows();
        assert_eq!(rendered!(Insert(LogRows, &rows)), rendered!(diesel::insert_into(log_entries::table).values(&rows)));
        let one = [rows[1].clone()];
        assert_eq!(rendered!(Insert(LogRows, &one)), rendered!(diesel::insert_into(log_entries::table).values(&one)));
    }

    #[test]
    fn address_rows_render_as_diesel_does() {
        let rows = [AddressRow { principal: 4, seq: 9 }, AddressRow { principal: 2, seq: 10 }];
        assert_eq!(rendered!(Insert(AddressRows, &rows)), rendered!(diesel::insert_into(address_entries::table).values(&rows)));
        let recent: Vec<_> =
            rows.iter().map(|a| (address_recent::principal.eq(a.principal), address_recent::seq.eq(a.seq))).collect();
        assert_eq!(rendered!(Insert(RecentAddressRows, &rows)), rendered!(diesel::insert_into(address_recent::table).values(&recent)));
    }

    #[test]
    fn block_rows_render_as_diesel_does() {
        let rows = block_rows();
        assert_eq!(rendered!(Insert(NewBlocks, &rows)), rendered!(diesel::insert_into(blocks::table).values(&rows)));
        // diesel renders an upsert on SQLite one row at a time.
        let upsert = diesel::insert_into(blocks::table)
            .values(&rows[1])
            .on_conflict((blocks::block_height, blocks::block_hash))
            .do_update()
            .set((
                blocks::parent_hash.eq(excluded(blocks::parent_hash)),
                blocks::canonical.eq(excluded(blocks::canonical)),
                blocks::last_seq.eq(excluded(blocks::last_seq)),
                blocks::applied_seq.eq(excluded(blocks::applied_seq)),
            ));
        assert_eq!(rendered!(Insert(BlockUpdates, &[rows[1].clone()])), rendered!(upsert));
    }
}
