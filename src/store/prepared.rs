//! Raw SQL statements that diesel keeps prepared.
//!
//! `diesel::sql_query` marks itself unsafe to cache (its text could be built at run time),
//! so every execution is parsed anew, and on diesel-async's PostgreSQL connection it also
//! costs a round trip to prepare, made while holding the statement cache, which serialises
//! pipelined statements. The appender's statements are fixed texts: [`Prepared`] runs one
//! with its binds and lets the connection cache it by its text, so it is parsed once per
//! connection.

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::HasSqlType;
use diesel::QueryResult;
use std::marker::PhantomData;

/// A fixed SQL text whose placeholders are written `?`, one per bind, in order; each
/// becomes the backend's own (`$n` on PostgreSQL). The text must not contain `?` otherwise.
pub(crate) struct Prepared<B> {
    sql: &'static str,
    binds: B,
}

impl<B> Prepared<B> {
    pub(crate) fn new(sql: &'static str, binds: B) -> Prepared<B> {
        Prepared { sql, binds }
    }
}

/// One bind value with the SQL type it is sent as.
pub(crate) struct Bind<ST, T>(T, PhantomData<ST>);

pub(crate) fn bind<ST, T>(value: T) -> Bind<ST, T> {
    Bind(value, PhantomData)
}

/// Binds that interleave with the pieces of a statement's text.
pub(crate) trait Binds<DB: Backend> {
    /// Pushes each bind after the next piece of `sql`.
    fn walk<'b>(&'b self, sql: &mut std::str::Split<'static, char>, out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()>;
}

impl<DB, ST, T> Binds<DB> for Bind<ST, T>
where
    DB: Backend + HasSqlType<ST>,
    T: ToSql<ST, DB>,
{
    fn walk<'b>(&'b self, sql: &mut std::str::Split<'static, char>, out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(sql.next().unwrap_or_default());
        out.push_bind_param::<ST, T>(&self.0)
    }
}

/// A statement without placeholders.
impl<DB: Backend> Binds<DB> for () {
    fn walk<'b>(&'b self, _sql: &mut std::str::Split<'static, char>, _out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()> {
        Ok(())
    }
}

macro_rules! tuple_binds {
    ($($name:ident),+) => {
        impl<DB: Backend, $($name: Binds<DB>),+> Binds<DB> for ($($name,)+) {
            #[allow(non_snake_case)]
            fn walk<'b>(&'b self, sql: &mut std::str::Split<'static, char>, out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()> {
                let ($($name,)+) = self;
                $($name.walk(sql, out)?;)+
                Ok(())
            }
        }
    };
}

tuple_binds!(A);
tuple_binds!(A, B);
tuple_binds!(A, B, C, D, E, F);
tuple_binds!(A, B, C, D, E, F, G, H, I, J, K);

impl<DB: Backend, B: Binds<DB>> QueryFragment<DB> for Prepared<B> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        let mut pieces = self.sql.split('?');
        self.binds.walk(&mut pieces, &mut out)?;
        out.push_sql(pieces.next().unwrap_or_default());
        match pieces.next() {
            None => Ok(()),
            Some(_) => Err(diesel::result::Error::QueryBuilderError("more placeholders than binds".into())),
        }
    }
}

/// Cached by its text (no static id): one prepared statement per distinct text.
impl<B> QueryId for Prepared<B> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// Rows come back by column name (`QueryableByName`), as with `sql_query`.
impl<B> diesel::query_builder::Query for Prepared<B> {
    type SqlType = diesel::sql_types::Untyped;
}

impl<B, Conn> diesel::RunQueryDsl<Conn> for Prepared<B> {}

#[cfg(test)]
mod tests {
    use super::{bind, Prepared};
    use diesel::connection::{InstrumentationEvent, SimpleConnection};
    use diesel::pg::Pg;
    use diesel::sql_types::{BigInt, Text};
    use diesel::{Connection, RunQueryDsl, SqliteConnection};
    use std::sync::{Arc, Mutex};

    #[test]
    fn placeholders_become_the_backends_own_in_order() {
        let q = Prepared::new("SELECT ?::int8, ?::text", (bind::<BigInt, _>(7_i64), bind::<Text, _>("a")));
        let sql = diesel::debug_query::<Pg, _>(&q).to_string();
        assert!(sql.starts_with("SELECT $1::int8, $2::text"), "{sql}");
    }

    #[test]
    fn a_placeholder_without_a_bind_is_an_error_not_a_statement() {
        let mut c = SqliteConnection::establish(":memory:").expect("in-memory SQLite");
        let q = Prepared::new("SELECT ?, ?", (bind::<BigInt, _>(1_i64),));
        let err = q.execute(&mut c).expect_err("one bind for two placeholders");
        assert!(err.to_string().contains("more placeholders than binds"), "{err}");
    }

    /// The point of the type: a second execution reuses the statement prepared by the first
    /// (diesel reports each statement it prepares into its cache).
    #[test]
    fn a_statement_is_prepared_once_per_connection() {
        let cached = Arc::new(Mutex::new(Vec::<String>::new()));
        let seen = cached.clone();
        let mut c = SqliteConnection::establish(":memory:").expect("in-memory SQLite");
        c.batch_execute("CREATE TABLE t (id BIGINT, name TEXT)").expect("create");
        c.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { sql, .. } = event {
                seen.lock().expect("not poisoned").push(sql.to_string());
            }
        });
        for (id, name) in [(1_i64, "a"), (2, "b"), (3, "c")] {
            Prepared::new("INSERT INTO t (id, name) VALUES (?, ?)", (bind::<BigInt, _>(id), bind::<Text, _>(name)))
                .execute(&mut c)
                .expect("insert");
        }
        let rows: i64 = diesel::select(diesel::dsl::sql::<BigInt>("(SELECT count(*) FROM t)")).get_result(&mut c).expect("count");
        assert_eq!(rows, 3);
        let cached = cached.lock().expect("not poisoned").clone();
        assert_eq!(cached.iter().filter(|s| s.starts_with("INSERT INTO t")).count(), 1, "{cached:?}");
    }
}
