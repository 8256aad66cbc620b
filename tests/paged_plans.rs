//! Every paged read the server runs walks an index in `seq` order, whatever the tables'
//! statistics say: on a log loaded through the real store and never analysed (PostgreSQL
//! with autovacuum off for its tables, SQLite without `sqlite_stat1`), `EXPLAIN` of each
//! query, built by the same functions the server uses and bound with the values a real read
//! binds, shows an index scan in order: no sort of the range, no bitmap heap scan of it, no
//! full scan. A page then costs what its rows cost, wherever in the log it starts.

mod common;
use common::{append_long_log, open_store, Backend, TestDb};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sqlite::Sqlite;
use diesel::QueryResult;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use timebank_realtime::model::EventType;
use timebank_realtime::store::paged::{Height, PagedSql, Walk, HEIGHT_WINDOW};
use timebank_realtime::store::read::{log_queries, MAX_PAGE};
use timebank_realtime::store::history::rollbacks_of_block_walk;
use timebank_realtime::store::{EntryFilter, EventQuery, Store, PG_PAGED_READ_SETTINGS, PG_SESSION_SETTINGS};
use timebank_realtime::synth;

const BLOCKS: i64 = 250;
const EVENTS_PER_BLOCK: usize = 120;
const PRINCIPALS: usize = 300;
/// Pages as the server reads them: catch-up, the read API's largest, the projection engine's.
const HISTORY_PAGE: i64 = timebank_realtime::actors::session::HISTORY_PAGE;
const PROJECTION_PAGE: i64 = 10_000;

/// `EXPLAIN` (PostgreSQL) of a query, with the query's own binds.
struct ExplainPg<Q>(Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for ExplainPg<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("EXPLAIN ");
        self.0.walk_ast(out.reborrow())
    }
}

impl<Q> QueryId for ExplainPg<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> Query for ExplainPg<Q> {
    type SqlType = diesel::sql_types::Text;
}

/// `EXPLAIN QUERY PLAN` (SQLite) of a query, with the query's own binds.
struct ExplainSqlite<Q>(Q);

impl<Q: QueryFragment<Sqlite>> QueryFragment<Sqlite> for ExplainSqlite<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql("EXPLAIN QUERY PLAN ");
        self.0.walk_ast(out.reborrow())
    }
}

impl<Q> QueryId for ExplainSqlite<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> Query for ExplainSqlite<Q> {
    type SqlType = (diesel::sql_types::Integer, diesel::sql_types::Integer, diesel::sql_types::Integer, diesel::sql_types::Text);
}

impl<Q, C> diesel::RunQueryDsl<C> for ExplainSqlite<Q> {}

/// What a query's plan must show.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// A page: one of these indexes (by name) walked in order, nothing sorted, nothing
    /// scanned whole.
    Walk(&'static [&'static str]),
    /// A lookup of given keys: through these indexes, nothing sorted, nothing scanned whole.
    Lookup(&'static [&'static str]),
}

/// One query a paged read runs, for both backends.
struct Read<'a> {
    name: String,
    shape: Shape,
    pg: Box<dyn QueryFragment<Pg> + Send + 'a>,
    sqlite: Box<dyn QueryFragment<Sqlite> + Send + 'a>,
}

macro_rules! read {
    ($name:expr, $shape:expr, |$db:ident| $query:expr) => {{
        Read {
            name: $name.to_string(),
            shape: $shape,
            pg: {
                #[allow(dead_code)]
                type $db = Pg;
                Box::new($query)
            },
            sqlite: {
                #[allow(dead_code)]
                type $db = Sqlite;
                Box::new($query)
            },
        }
    }};
}

const PKEY: &[&str] = &["log_entries_pkey"];
const CONTRACT_INDEX: &[&str] = &["log_entries_contract_key_seq"];
const TYPE_INDEX: &[&str] = &["log_entries_type_code_seq"];
const ADDRESS_INDEXES: &[&str] = &["address_entries_pkey", "address_recent_pkey"];
const HEIGHT_INDEX: &[&str] = &["log_entries_height"];
const ROLLBACK_INDEX: &[&str] = &["log_entries_rollback_of"];

/// The queries `Store::page` runs for a walk: with an address, the next `seq`s of both
/// address tables, then those rows; with a lower height bound, a window of the filter's
/// index and the jump to the next entry above the height; else one walk of the index.
fn page_reads<'a>(w: Walk<'a>, name: String, indexes: &'static [&'static str], seqs: &'a [i64]) -> Vec<Read<'a>> {
    if w.address.is_some() {
        return vec![
            read!(format!("{name}: address rows"), Shape::Walk(&["address_entries_pkey"]), |DB| {
                <DB as PagedSql>::address_walk(&w)
            }),
            read!(format!("{name}: recent address rows"), Shape::Walk(&["address_recent_pkey"]), |DB| {
                <DB as PagedSql>::recent_address_walk(&w)
            }),
            read!(format!("{name}: their entries"), Shape::Lookup(PKEY), |DB| <DB as PagedSql>::rows(&w, seqs)),
        ];
    }
    match w.height {
        Some(Height::Above(h)) | Some(Height::AtLeast(h)) => {
            let window = w.window(w.after + HEIGHT_WINDOW);
            vec![
                read!(format!("{name}: window"), Shape::Walk(indexes), |DB| <DB as PagedSql>::walk(&window)),
                read!(format!("{name}: next above the height"), Shape::Lookup(HEIGHT_INDEX), |DB| {
                    <DB as PagedSql>::next_at_height(h, w.after)
                }),
            ]
        }
        _ => vec![read!(name, Shape::Walk(indexes), |DB| <DB as PagedSql>::walk(&w))],
    }
}

/// The loaded log, the filters a subscription or a read API query can name, and the
/// values a real read of this log binds.
struct Fixture {
    /// Each filter with the index a page of it must walk.
    filters: Vec<(EntryFilter, &'static [&'static str])>,
    events: Vec<(EventQuery, &'static [&'static str])>,
    head: i64,
    mid: i64,
    low_height: i64,
    high_height: i64,
    /// The `seq`s of a page of events (what the rolled-back check and the projection
    /// engine's body lookup bind).
    page_seqs: Vec<i64>,
    abandoned_hash: String,
    abandoned_applied: i64,
}

impl Fixture {
    async fn new(store: &Store) -> Fixture {
        let head = store.head().await.expect("head").head_seq;
        let (low_height, high_height) = (10, BLOCKS - 5);
        let abandoned_hash = synth::block_hash(BLOCKS, 0);
        let abandoned_applied =
            store.last_applied_marker(&abandoned_hash, BLOCKS, head).await.expect("marker").expect("block was applied");
        let middle_page = EventQuery { after_seq: head / 2, limit: MAX_PAGE, ..EventQuery::default() };
        let page_seqs = store.events(&middle_page).await.expect("events").iter().map(|e| e.seq).collect();
        let contract = Some(synth::CONTRACT.to_string());
        let address = Some(synth::principal(7));
        let filters = vec![
            (EntryFilter::default(), PKEY),
            (EntryFilter { contract_id: contract.clone(), ..EntryFilter::default() }, CONTRACT_INDEX),
            (
                EntryFilter { contract_id: contract.clone(), event_type: Some(EventType::PrintEvent), address: None, ops_of: None },
                CONTRACT_INDEX,
            ),
            (EntryFilter { event_type: Some(EventType::FtTransferEvent), ..EntryFilter::default() }, TYPE_INDEX),
            (EntryFilter { address: address.clone(), ..EntryFilter::default() }, ADDRESS_INDEXES),
        ];
        let mut events = Vec::new();
        for after_seq in [0, head / 2] {
            let base = EventQuery { after_seq, limit: MAX_PAGE, ..EventQuery::default() };
            events.extend([
                (base.clone(), PKEY),
                (EventQuery { contract_id: contract.clone(), ..base.clone() }, CONTRACT_INDEX),
                (
                    EventQuery { contract_id: contract.clone(), event_type: Some(EventType::PrintEvent), ..base.clone() },
                    CONTRACT_INDEX,
                ),
                (EventQuery { event_type: Some(EventType::FtTransferEvent), ..base.clone() }, TYPE_INDEX),
                (EventQuery { address: address.clone(), ..base.clone() }, ADDRESS_INDEXES),
                (EventQuery { from_block_height: Some(low_height), ..base.clone() }, PKEY),
                (EventQuery { from_block_height: Some(high_height), ..base.clone() }, PKEY),
                (
                    EventQuery { contract_id: contract.clone(), from_block_height: Some(high_height), ..base },
                    CONTRACT_INDEX,
                ),
            ]);
        }
        Fixture {
            filters,
            events,
            head,
            mid: head / 2,
            low_height,
            high_height,
            page_seqs,
            abandoned_hash,
            abandoned_applied,
        }
    }

    /// Every query of every paged read the server runs.
    fn reads(&self) -> Vec<Read<'_>> {
        let mut out = Vec::new();
        let (seqs, head) = (&self.page_seqs, self.head);
        // Catch-up, `since.seq`, from the start and from the middle of the log.
        for after in [0, self.mid] {
            for (filter, indexes) in &self.filters {
                let w = filter.since_seq_walk(after, head, HISTORY_PAGE);
                out.extend(page_reads(w, format!("catch-up since.seq={after} {filter:?}"), indexes, seqs));
            }
        }
        // Catch-up, `since.blockHeight`, far behind and near the head.
        for height in [self.low_height, self.high_height] {
            for (filter, indexes) in &self.filters {
                let w = filter.canonical_above_walk(height, 0, head, HISTORY_PAGE);
                out.extend(page_reads(w, format!("catch-up since.blockHeight={height} {filter:?}"), indexes, seqs));
            }
        }
        out.push(read!("catch-up since.blockHeight, events: rolled back?", Shape::Lookup(ROLLBACK_INDEX), |DB| {
            <DB as PagedSql>::undone(seqs)
        }));
        // A stale `since.blockHash`: the rollbacks of an abandoned block.
        let w = rollbacks_of_block_walk(&self.abandoned_hash, BLOCKS, self.abandoned_applied, head);
        out.extend(page_reads(w, "catch-up fork walk".into(), HEIGHT_INDEX, seqs));
        // `GET /api/events` and the `events` command.
        for (q, indexes) in &self.events {
            out.extend(page_reads(q.walk(), format!("events {q:?}"), indexes, seqs));
        }
        // The projection engine's reads of the log.
        for after in [0, self.mid] {
            out.push(read!(format!("projections: log after {after}"), Shape::Walk(PKEY), |DB| {
                log_queries::entries_after(after, PROJECTION_PAGE)
            }));
        }
        out.push(read!("projections: bodies", Shape::Lookup(PKEY), |DB| log_queries::bodies(seqs)));
        out.push(read!("projections: last seq", Shape::Walk(PKEY), |DB| log_queries::last_seq()));
        out
    }
}

/// Why a PostgreSQL plan is refused, if it is.
fn refuse_pg(plan: &str, shape: Shape) -> Option<String> {
    for bad in ["Seq Scan", "Sort"] {
        if plan.contains(bad) {
            return Some(format!("has a {bad}"));
        }
    }
    let uses = |indexes: &[&str], kinds: &[&str]| {
        plan.lines().any(|l| kinds.iter().any(|k| l.contains(k)) && indexes.iter().any(|i| l.contains(&format!(" on {i}")) || l.contains(&format!("using {i} "))))
    };
    match shape {
        Shape::Walk(indexes) => {
            if plan.contains("Bitmap") {
                return Some("has a bitmap scan (no order)".into());
            }
            (!uses(indexes, &["Index Scan", "Index Only Scan"])).then(|| format!("walks none of {indexes:?}"))
        }
        Shape::Lookup(indexes) => (!uses(indexes, &["Index Scan", "Index Only Scan", "Bitmap Index Scan"]))
            .then(|| format!("looks up through none of {indexes:?}")),
    }
}

/// Why a SQLite plan is refused, if it is. `SCAN log_entries` walks the rowid (`seq`) in
/// order, which only a walk of the primary key may do.
fn refuse_sqlite(plan: &str, shape: Shape) -> Option<String> {
    if plan.contains("TEMP B-TREE") {
        return Some("sorts in a temp b-tree".into());
    }
    let (indexes, pkey_walk) = match shape {
        Shape::Walk(i) => (i, i.contains(&"log_entries_pkey")),
        Shape::Lookup(i) => (i, false),
    };
    let rowid_walk = |l: &str| pkey_walk && l.trim() == "SCAN log_entries";
    if let Some(l) = plan.lines().find(|l| l.starts_with("SCAN ") && !l.contains("USING") && !rowid_walk(l)) {
        return Some(format!("scans a table whole: {l}"));
    }
    let uses = plan.lines().any(|l| {
        indexes.iter().any(|i| match *i {
            "log_entries_pkey" => l.contains("log_entries USING INTEGER PRIMARY KEY") || l.trim() == "SCAN log_entries",
            "address_entries_pkey" => l.contains("address_entries USING PRIMARY KEY"),
            "address_recent_pkey" => l.contains("address_recent USING PRIMARY KEY"),
            other => l.contains(&format!("USING INDEX {other} ")) || l.contains(&format!("USING COVERING INDEX {other} ")),
        })
    });
    (!uses).then(|| format!("goes through none of {indexes:?}"))
}

async fn plans_walk_indexes_without_statistics(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = open_store(&db.url).await;
    if db.is_postgres() {
        db.execute(
            "ALTER TABLE log_entries SET (autovacuum_enabled = false); \
             ALTER TABLE address_entries SET (autovacuum_enabled = false); \
             ALTER TABLE address_recent SET (autovacuum_enabled = false); \
             ALTER TABLE principals SET (autovacuum_enabled = false); \
             ALTER TABLE blocks SET (autovacuum_enabled = false)",
        )
        .await;
    }
    append_long_log(&store, BLOCKS, EVENTS_PER_BLOCK, PRINCIPALS).await;
    let fixture = Fixture::new(&store).await;
    assert!(fixture.head > 30_000, "the log holds {} entries", fixture.head);
    let reads = fixture.reads();

    let mut refused = Vec::new();
    if db.is_postgres() {
        // Set up as the read pool's connections are.
        let mut conn = AsyncPgConnection::establish(&db.url).await.expect("connect");
        conn.batch_execute(PG_SESSION_SETTINGS).await.expect("session settings");
        conn.batch_execute(PG_PAGED_READ_SETTINGS).await.expect("paged read settings");
        let analysed: i64 = {
            use diesel_async::RunQueryDsl;
            diesel::sql_query(
                "SELECT count(*) AS n FROM pg_stats WHERE tablename IN \
                 ('log_entries', 'address_entries', 'address_recent', 'principals', 'blocks')",
            )
            .get_result::<Count>(&mut conn)
            .await
            .expect("pg_stats")
            .n
        };
        assert_eq!(analysed, 0, "the tables must have no statistics");
        for r in reads {
            let sql = diesel::debug_query::<Pg, _>(&r.pg).to_string();
            let plan: Vec<String> = {
                use diesel_async::RunQueryDsl;
                ExplainPg(r.pg).load(&mut conn).await.unwrap_or_else(|e| panic!("EXPLAIN {sql}: {e}"))
            };
            let plan = plan.join("\n");
            println!("{}\n{sql}\n{plan}\n", r.name);
            if let Some(why) = refuse_pg(&plan, r.shape) {
                refused.push(format!("{}: {why}\n{sql}\n{plan}", r.name));
            }
        }
    } else {
        use diesel::{Connection, RunQueryDsl};
        let path = db.sqlite_path().expect("sqlite path");
        let mut conn = diesel::SqliteConnection::establish(path.to_str().expect("utf-8")).expect("connect");
        let stat: i64 = diesel::sql_query("SELECT count(*) AS n FROM sqlite_master WHERE name LIKE 'sqlite_stat%'")
            .get_result::<Count>(&mut conn)
            .expect("sqlite_master")
            .n;
        assert_eq!(stat, 0, "the tables must have no statistics");
        for r in reads {
            let sql = diesel::debug_query::<Sqlite, _>(&r.sqlite).to_string();
            let rows: Vec<(i32, i32, i32, String)> =
                ExplainSqlite(r.sqlite).load(&mut conn).unwrap_or_else(|e| panic!("EXPLAIN QUERY PLAN {sql}: {e}"));
            let plan = rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n");
            println!("{}\n{sql}\n{plan}\n", r.name);
            if let Some(why) = refuse_sqlite(&plan, r.shape) {
                refused.push(format!("{}: {why}\n{sql}\n{plan}", r.name));
            }
        }
    }
    assert!(refused.is_empty(), "{} plans refused:\n\n{}", refused.len(), refused.join("\n\n"));
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

both_backends!(plans_walk_indexes_without_statistics, plans_walk_indexes_without_statistics);
