//! The one way code in `store` and `projections` chooses between PostgreSQL and SQLite.
//!
//! Whatever is held per backend — a pool, a pooled connection, the appender's connection, the
//! projection engine's sync connection — is a [`Backend`] of the two halves, and
//! [`on_backend!`] runs one body against whichever half is there. The body is written once
//! and type-checked once per backend, so a diesel query that one backend cannot run fails
//! to compile instead of failing at run time.

/// One value per backend: `Pg` holds the PostgreSQL half, `Sqlite` the SQLite half.
pub(crate) enum Backend<P, S> {
    Pg(P),
    Sqlite(S),
}

impl<P, S> Backend<P, S> {
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Backend::Pg(_))
    }
}

/// Runs `$body` with `$c` bound to the connection inside `$backend` (a `&mut Backend` whose
/// halves dereference to a connection: a `Box`, a pooled connection).
macro_rules! on_backend {
    ($backend:expr, |$c:ident| $body:expr) => {
        match $backend {
            $crate::store::backend::Backend::Pg($c) => {
                let $c = &mut **$c;
                $body
            }
            $crate::store::backend::Backend::Sqlite($c) => {
                let $c = &mut **$c;
                $body
            }
        }
    };
}
pub(crate) use on_backend;
