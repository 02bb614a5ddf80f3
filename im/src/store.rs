//! What the bridge keeps across restarts, in one SQLite file on the data volume: connect secrets, bindings, each
//! user's current box and session, the outbox (with the offline backlog cap), button tokens, prompts in flight and
//! which answers were already delivered.
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use crate::platform::{Outbound, UserId};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the bridge's database {path} cannot be opened: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("the bridge's database failed: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("a stored message cannot be decoded: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("you already have a box named {0:?}")]
    NameTaken(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A chat user bound to a box.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub platform: String,
    pub user: String,
    pub chat: String,
    pub name: String,
    pub box_id: String,
    /// The user's own name for the box (`/rename`), unique among the user's boxes.
    pub label: String,
    pub last_seen: i64,
}

/// A message waiting in the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    pub seq: i64,
    pub platform: String,
    pub chat: String,
    pub user: String,
    pub body: Outbound,
    /// A name under which the sent message's id is remembered, to edit it later (`perm:<request id>`).
    pub tag: Option<String>,
}

/// A prompt taken from chat and not yet answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    pub message_id: String,
    pub box_id: String,
    pub session: String,
    pub platform: String,
    pub user: String,
    pub text: String,
    /// `queued` (waits for the session to be idle) or `sent`.
    pub state: String,
}

pub struct Store {
    conn: Mutex<Connection>,
    backlog_cap: usize,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS secrets (box_id TEXT PRIMARY KEY, secret BLOB NOT NULL, generation INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bindings (
  platform TEXT NOT NULL, user_id TEXT NOT NULL, box_id TEXT NOT NULL, chat_id TEXT NOT NULL, name TEXT NOT NULL,
  label TEXT NOT NULL, bound_at INTEGER NOT NULL, PRIMARY KEY (platform, user_id, box_id));
CREATE TABLE IF NOT EXISTS users (
  platform TEXT NOT NULL, user_id TEXT NOT NULL, current_box TEXT, verbosity TEXT NOT NULL DEFAULT 'normal',
  last_seen INTEGER NOT NULL DEFAULT 0, missed INTEGER NOT NULL DEFAULT 0, awaiting TEXT,
  PRIMARY KEY (platform, user_id));
CREATE TABLE IF NOT EXISTS focus (
  platform TEXT NOT NULL, user_id TEXT NOT NULL, box_id TEXT NOT NULL, session_id TEXT NOT NULL,
  PRIMARY KEY (platform, user_id, box_id));
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, platform TEXT NOT NULL, chat_id TEXT NOT NULL, user_id TEXT NOT NULL,
  body TEXT NOT NULL, tag TEXT, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS once_keys (key TEXT PRIMARY KEY, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sent_refs (
  tag TEXT NOT NULL, platform TEXT NOT NULL, chat_id TEXT NOT NULL, message_ref TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS sent_refs_tag ON sent_refs (tag);
CREATE TABLE IF NOT EXISTS tokens (token TEXT PRIMARY KEY, action TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS prompts (
  message_id TEXT PRIMARY KEY, box_id TEXT NOT NULL, session_id TEXT NOT NULL, platform TEXT NOT NULL,
  user_id TEXT NOT NULL, text TEXT NOT NULL, state TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS faults (platform TEXT PRIMARY KEY, message TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS watermarks (box_id TEXT NOT NULL, session_id TEXT NOT NULL, message_id TEXT NOT NULL,
  PRIMARY KEY (box_id, session_id));
";

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Opens (creating if needed) the database. `backlog_cap` is how many undelivered messages a user keeps.
    pub fn open(path: &Path, backlog_cap: usize) -> Result<Store> {
        let conn = Connection::open(path).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            source: e,
        })?;
        Self::init(conn, backlog_cap)
    }

    pub fn in_memory(backlog_cap: usize) -> Result<Store> {
        Self::init(Connection::open_in_memory()?, backlog_cap)
    }

    fn init(conn: Connection, backlog_cap: usize) -> Result<Store> {
        // `cloudcode-im link|status|users` open the same file while the bridge serves: wait for its locks (and
        // every write transaction takes its lock up front: a deferred one that reads, then writes, gets BUSY at
        // once when another connection wrote in between — the busy timeout does not cover that upgrade).
        // Two processes may also create the file at once (the bridge starting while `link` runs): switching to
        // WAL and creating the tables both write, so the schema goes in one IMMEDIATE transaction (its lock is
        // waited for) and the journal switch, which SQLite refuses at once rather than wait, is retried.
        conn.busy_timeout(std::time::Duration::from_secs(15))?;
        Self::use_wal(&conn)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(&format!("BEGIN IMMEDIATE;{SCHEMA}COMMIT;"))?;
        Ok(Store {
            conn: Mutex::new(conn),
            backlog_cap,
        })
    }

    fn use_wal(conn: &Connection) -> Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            // An in-memory database answers "memory" and stays so: only a refusal is retried.
            match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
                Ok(_) => return Ok(()),
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (every change is one statement or a
        // transaction), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ---- connect secrets --------------------------------------------------------------------------------------

    /// The box's connect secret, created on first use.
    pub fn secret(&self, box_id: &str) -> Result<Vec<u8>> {
        let db = self.db();
        if let Some(s) = db
            .query_row(
                "SELECT secret FROM secrets WHERE box_id = ?1",
                [box_id],
                |r| r.get(0),
            )
            .optional()?
        {
            return Ok(s);
        }
        let s = crate::binding::new_secret();
        db.execute(
            "INSERT INTO secrets (box_id, secret, generation) VALUES (?1, ?2, 1)",
            params![box_id, s],
        )?;
        Ok(s)
    }

    /// A new connect secret for the box; every binding to it is removed. Returns who was unbound.
    pub fn rotate_secret(&self, box_id: &str) -> Result<Vec<Binding>> {
        let unbound = self.bindings_of_box(box_id)?;
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let s = crate::binding::new_secret();
        tx.execute(
            "INSERT INTO secrets (box_id, secret, generation) VALUES (?1, ?2, 1)
             ON CONFLICT (box_id) DO UPDATE SET secret = excluded.secret, generation = generation + 1",
            params![box_id, s],
        )?;
        tx.execute("DELETE FROM bindings WHERE box_id = ?1", [box_id])?;
        tx.execute(
            "UPDATE users SET current_box = NULL WHERE current_box = ?1",
            [box_id],
        )?;
        tx.commit()?;
        Ok(unbound)
    }

    pub fn generation(&self, box_id: &str) -> Result<i64> {
        Ok(self
            .db()
            .query_row(
                "SELECT generation FROM secrets WHERE box_id = ?1",
                [box_id],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    // ---- bindings ---------------------------------------------------------------------------------------------

    /// Binds a user to a box (idempotent) and makes it their current box. Returns false when already bound.
    pub fn bind(
        &self,
        platform: &str,
        user: &UserId,
        chat: &str,
        name: &str,
        box_id: &str,
        label: &str,
    ) -> Result<bool> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let exists: bool = tx
            .query_row(
                "SELECT 1 FROM bindings WHERE platform = ?1 AND user_id = ?2 AND box_id = ?3",
                params![platform, user.0, box_id],
                |_| Ok(true),
            )
            .optional()?
            .unwrap_or(false);
        if exists {
            tx.execute(
                "UPDATE bindings SET chat_id = ?4, name = ?5 WHERE platform = ?1 AND user_id = ?2 AND box_id = ?3",
                params![platform, user.0, box_id, chat, name],
            )?;
        } else {
            let label = unique_label(&tx, platform, &user.0, label)?;
            tx.execute(
                "INSERT INTO bindings (platform, user_id, box_id, chat_id, name, label, bound_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![platform, user.0, box_id, chat, name, label, now()],
            )?;
        }
        tx.execute(
            "INSERT INTO users (platform, user_id, current_box, last_seen) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (platform, user_id) DO UPDATE SET current_box = excluded.current_box, last_seen = excluded.last_seen",
            params![platform, user.0, box_id, now()],
        )?;
        tx.commit()?;
        Ok(!exists)
    }

    pub fn unbind(&self, platform: &str, user: &UserId, box_id: &str) -> Result<bool> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "DELETE FROM bindings WHERE platform = ?1 AND user_id = ?2 AND box_id = ?3",
            params![platform, user.0, box_id],
        )?;
        // The current box moves to another bound one, if any.
        let next: Option<String> = tx
            .query_row(
                "SELECT box_id FROM bindings WHERE platform = ?1 AND user_id = ?2 ORDER BY bound_at LIMIT 1",
                params![platform, user.0],
                |r| r.get(0),
            )
            .optional()?;
        tx.execute(
            "UPDATE users SET current_box = ?3 WHERE platform = ?1 AND user_id = ?2 AND current_box = ?4",
            params![platform, user.0, next, box_id],
        )?;
        tx.commit()?;
        Ok(n > 0)
    }

    fn read_bindings(&self, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<Binding>> {
        let db = self.db();
        let mut st = db.prepare(sql)?;
        let rows = st.query_map(args, |r| {
            Ok(Binding {
                platform: r.get(0)?,
                user: r.get(1)?,
                box_id: r.get(2)?,
                chat: r.get(3)?,
                name: r.get(4)?,
                label: r.get(5)?,
                last_seen: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    const BINDING_COLS: &'static str = "SELECT b.platform, b.user_id, b.box_id, b.chat_id, b.name, b.label,
        COALESCE(u.last_seen, 0) FROM bindings b LEFT JOIN users u ON u.platform = b.platform AND u.user_id = b.user_id";

    pub fn bindings_of_user(&self, platform: &str, user: &UserId) -> Result<Vec<Binding>> {
        let sql = format!(
            "{} WHERE b.platform = ?1 AND b.user_id = ?2 ORDER BY b.bound_at, b.box_id",
            Self::BINDING_COLS
        );
        self.read_bindings(&sql, &[&platform, &user.0])
    }

    pub fn bindings_of_box(&self, box_id: &str) -> Result<Vec<Binding>> {
        let sql = format!(
            "{} WHERE b.box_id = ?1 ORDER BY b.bound_at, b.platform, b.user_id",
            Self::BINDING_COLS
        );
        self.read_bindings(&sql, &[&box_id])
    }

    pub fn all_bindings(&self) -> Result<Vec<Binding>> {
        let sql = format!(
            "{} ORDER BY b.box_id, b.bound_at, b.platform, b.user_id",
            Self::BINDING_COLS
        );
        self.read_bindings(&sql, &[])
    }

    pub fn current_box(&self, platform: &str, user: &UserId) -> Result<Option<String>> {
        Ok(self
            .db()
            .query_row(
                "SELECT current_box FROM users WHERE platform = ?1 AND user_id = ?2",
                params![platform, user.0],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }

    pub fn set_current_box(&self, platform: &str, user: &UserId, box_id: &str) -> Result<()> {
        self.db().execute(
            "UPDATE users SET current_box = ?3 WHERE platform = ?1 AND user_id = ?2",
            params![platform, user.0, box_id],
        )?;
        Ok(())
    }

    pub fn rename(&self, platform: &str, user: &UserId, box_id: &str, label: &str) -> Result<()> {
        let db = self.db();
        let taken: bool = db
            .query_row(
                "SELECT 1 FROM bindings WHERE platform = ?1 AND user_id = ?2 AND label = ?3 AND box_id != ?4",
                params![platform, user.0, label, box_id],
                |_| Ok(true),
            )
            .optional()?
            .unwrap_or(false);
        if taken {
            return Err(StoreError::NameTaken(label.to_string()));
        }
        db.execute(
            "UPDATE bindings SET label = ?4 WHERE platform = ?1 AND user_id = ?2 AND box_id = ?3",
            params![platform, user.0, box_id, label],
        )?;
        Ok(())
    }

    /// Records activity of a user (the "online" list is who was active recently).
    pub fn touch(&self, platform: &str, user: &UserId) -> Result<()> {
        self.db().execute(
            "UPDATE users SET last_seen = ?3 WHERE platform = ?1 AND user_id = ?2",
            params![platform, user.0, now()],
        )?;
        Ok(())
    }

    pub fn verbosity(&self, platform: &str, user: &str) -> Result<String> {
        Ok(self
            .db()
            .query_row(
                "SELECT verbosity FROM users WHERE platform = ?1 AND user_id = ?2",
                params![platform, user],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or_else(|| "normal".into()))
    }

    pub fn set_verbosity(&self, platform: &str, user: &UserId, v: &str) -> Result<()> {
        self.db().execute(
            "UPDATE users SET verbosity = ?3 WHERE platform = ?1 AND user_id = ?2",
            params![platform, user.0, v],
        )?;
        Ok(())
    }

    /// What the user's next text message answers (reject-with-feedback, a custom question answer), if anything.
    pub fn awaiting(&self, platform: &str, user: &UserId) -> Result<Option<String>> {
        Ok(self
            .db()
            .query_row(
                "SELECT awaiting FROM users WHERE platform = ?1 AND user_id = ?2",
                params![platform, user.0],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }

    pub fn set_awaiting(&self, platform: &str, user: &UserId, what: Option<&str>) -> Result<()> {
        self.db().execute(
            "UPDATE users SET awaiting = ?3 WHERE platform = ?1 AND user_id = ?2",
            params![platform, user.0, what],
        )?;
        Ok(())
    }

    // ---- sessions -------------------------------------------------------------------------------------------

    pub fn focus(&self, platform: &str, user: &UserId, box_id: &str) -> Result<Option<String>> {
        Ok(self
            .db()
            .query_row(
                "SELECT session_id FROM focus WHERE platform = ?1 AND user_id = ?2 AND box_id = ?3",
                params![platform, user.0, box_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn set_focus(
        &self,
        platform: &str,
        user: &UserId,
        box_id: &str,
        session: &str,
    ) -> Result<()> {
        self.db().execute(
            "INSERT INTO focus (platform, user_id, box_id, session_id) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (platform, user_id, box_id) DO UPDATE SET session_id = excluded.session_id",
            params![platform, user.0, box_id, session],
        )?;
        Ok(())
    }

    /// The newest assistant message of a session already delivered (or skipped as history).
    pub fn watermark(&self, box_id: &str, session: &str) -> Result<Option<String>> {
        Ok(self
            .db()
            .query_row(
                "SELECT message_id FROM watermarks WHERE box_id = ?1 AND session_id = ?2",
                params![box_id, session],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn set_watermark(&self, box_id: &str, session: &str, message_id: &str) -> Result<()> {
        self.db().execute(
            "INSERT INTO watermarks (box_id, session_id, message_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (box_id, session_id) DO UPDATE SET message_id = excluded.message_id
             WHERE excluded.message_id > watermarks.message_id",
            params![box_id, session, message_id],
        )?;
        Ok(())
    }

    /// Sessions of a box the bridge delivers from (it has a watermark for them).
    pub fn followed_sessions(&self, box_id: &str) -> Result<Vec<String>> {
        let db = self.db();
        let mut st =
            db.prepare("SELECT session_id FROM watermarks WHERE box_id = ?1 ORDER BY session_id")?;
        let rows = st.query_map([box_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- prompts ------------------------------------------------------------------------------------------

    pub fn add_prompt(&self, p: &Prompt) -> Result<()> {
        self.db().execute(
            "INSERT OR IGNORE INTO prompts (message_id, box_id, session_id, platform, user_id, text, state, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![p.message_id, p.box_id, p.session, p.platform, p.user, p.text, p.state, now()],
        )?;
        Ok(())
    }

    pub fn set_prompt_state(&self, message_id: &str, state: &str) -> Result<()> {
        self.db().execute(
            "UPDATE prompts SET state = ?2 WHERE message_id = ?1",
            params![message_id, state],
        )?;
        Ok(())
    }

    pub fn remove_prompt(&self, message_id: &str) -> Result<()> {
        self.db()
            .execute("DELETE FROM prompts WHERE message_id = ?1", [message_id])?;
        Ok(())
    }

    /// Prompts of a session (or of every session when `session` is None), oldest first.
    pub fn prompts(&self, box_id: &str, session: Option<&str>) -> Result<Vec<Prompt>> {
        let db = self.db();
        let mut st = db.prepare(
            "SELECT message_id, box_id, session_id, platform, user_id, text, state FROM prompts
             WHERE box_id = ?1 AND (?2 IS NULL OR session_id = ?2) ORDER BY created, message_id",
        )?;
        let rows = st.query_map(params![box_id, session], |r| {
            Ok(Prompt {
                message_id: r.get(0)?,
                box_id: r.get(1)?,
                session: r.get(2)?,
                platform: r.get(3)?,
                user: r.get(4)?,
                text: r.get(5)?,
                state: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- outbox -------------------------------------------------------------------------------------------

    /// Queues a message for a user. With `once`, a key already used is ignored (an answer delivered before a
    /// reconnect or a restart is not delivered again). Past the backlog cap the oldest waiting messages of that
    /// user are dropped and counted as missed. Returns whether it was queued.
    pub fn enqueue(
        &self,
        b: &Binding,
        body: &Outbound,
        tag: Option<&str>,
        once: Option<&str>,
    ) -> Result<bool> {
        let json = serde_json::to_string(body)?;
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some(key) = once {
            let n = tx.execute(
                "INSERT OR IGNORE INTO once_keys (key, created) VALUES (?1, ?2)",
                params![format!("{}|{}|{key}", b.platform, b.user), now()],
            )?;
            if n == 0 {
                return Ok(false);
            }
        }
        tx.execute(
            "INSERT INTO outbox (platform, chat_id, user_id, body, tag, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![b.platform, b.chat, b.user, json, tag, now()],
        )?;
        let waiting: i64 = tx.query_row(
            "SELECT COUNT(*) FROM outbox WHERE platform = ?1 AND user_id = ?2",
            params![b.platform, b.user],
            |r| r.get(0),
        )?;
        let over = waiting - self.backlog_cap as i64;
        if over > 0 {
            tx.execute(
                "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE platform = ?1 AND user_id = ?2
                 ORDER BY seq LIMIT ?3)",
                params![b.platform, b.user, over],
            )?;
            tx.execute(
                "UPDATE users SET missed = missed + ?3 WHERE platform = ?1 AND user_id = ?2",
                params![b.platform, b.user, over],
            )?;
        }
        tx.commit()?;
        Ok(true)
    }

    /// The oldest waiting message of a platform.
    pub fn next_outgoing(&self, platform: &str) -> Result<Option<Outgoing>> {
        let db = self.db();
        let row = db
            .query_row(
                "SELECT seq, platform, chat_id, user_id, body, tag FROM outbox WHERE platform = ?1 ORDER BY seq LIMIT 1",
                [platform],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, Option<String>>(5)?,
                    ))
                },
            )
            .optional()?;
        match row {
            None => Ok(None),
            Some((seq, platform, chat, user, body, tag)) => Ok(Some(Outgoing {
                seq,
                platform,
                chat,
                user,
                body: serde_json::from_str(&body)?,
                tag,
            })),
        }
    }

    pub fn outbox_len(&self, platform: &str) -> Result<i64> {
        Ok(self.db().query_row(
            "SELECT COUNT(*) FROM outbox WHERE platform = ?1",
            [platform],
            |r| r.get(0),
        )?)
    }

    /// Removes a delivered message, remembering where it went when it carries a tag.
    pub fn delivered(&self, out: &Outgoing, refs: &[String]) -> Result<()> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM outbox WHERE seq = ?1", [out.seq])?;
        if let Some(tag) = &out.tag {
            for r in refs {
                tx.execute(
                    "INSERT INTO sent_refs (tag, platform, chat_id, message_ref) VALUES (?1, ?2, ?3, ?4)",
                    params![tag, out.platform, out.chat, r],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// A user's backlog as it stands: messages waiting for them and messages dropped past the cap (not reset).
    pub fn backlog(&self, platform: &str, user: &str) -> Result<(i64, i64)> {
        let db = self.db();
        let waiting: i64 = db.query_row(
            "SELECT COUNT(*) FROM outbox WHERE platform = ?1 AND user_id = ?2",
            params![platform, user],
            |r| r.get(0),
        )?;
        Ok((waiting, missed_count(&db, platform, user)?))
    }

    /// How many messages the user missed while the backlog was full; resets the count.
    pub fn take_missed(&self, platform: &str, user: &str) -> Result<i64> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = missed_count(&tx, platform, user)?;
        tx.execute(
            "UPDATE users SET missed = 0 WHERE platform = ?1 AND user_id = ?2",
            params![platform, user],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// Gives back a missed count whose notice could not be delivered.
    pub fn add_missed(&self, platform: &str, user: &str, n: i64) -> Result<()> {
        self.db().execute(
            "UPDATE users SET missed = missed + ?3 WHERE platform = ?1 AND user_id = ?2",
            params![platform, user, n],
        )?;
        Ok(())
    }

    /// Where the messages sent under a tag went: (platform, chat, message ref).
    pub fn sent_refs(&self, tag: &str) -> Result<Vec<(String, String, String)>> {
        let db = self.db();
        let mut st =
            db.prepare("SELECT platform, chat_id, message_ref FROM sent_refs WHERE tag = ?1")?;
        let rows = st.query_map([tag], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn forget_refs(&self, tag: &str) -> Result<()> {
        self.db()
            .execute("DELETE FROM sent_refs WHERE tag = ?1", [tag])?;
        Ok(())
    }

    // ---- faults ---------------------------------------------------------------------------------------------

    /// Records why a platform stopped (shown by `cloudcode-im status`); a later start clears it.
    pub fn set_fault(&self, platform: &str, message: &str) -> Result<()> {
        self.db().execute(
            "INSERT INTO faults (platform, message, at) VALUES (?1, ?2, ?3)
             ON CONFLICT (platform) DO UPDATE SET message = excluded.message, at = excluded.at",
            params![platform, message, now()],
        )?;
        Ok(())
    }

    pub fn clear_fault(&self, platform: &str) -> Result<()> {
        self.db()
            .execute("DELETE FROM faults WHERE platform = ?1", [platform])?;
        Ok(())
    }

    pub fn faults(&self) -> Result<Vec<(String, String, i64)>> {
        let db = self.db();
        let mut st = db.prepare("SELECT platform, message, at FROM faults ORDER BY platform")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- button tokens --------------------------------------------------------------------------------------

    /// Stores what a button does and returns its token (12 base62 characters: far below the 64-byte limit).
    pub fn put_token(&self, action: &serde_json::Value) -> Result<String> {
        use rand::Rng;
        const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut rng = rand::rng();
        let token: String = (0..12)
            .map(|_| B62[rng.random_range(0..B62.len())] as char)
            .collect();
        self.db().execute(
            "INSERT INTO tokens (token, action, created) VALUES (?1, ?2, ?3)",
            params![token, action.to_string(), now()],
        )?;
        Ok(token)
    }

    pub fn token(&self, token: &str) -> Result<Option<serde_json::Value>> {
        let s: Option<String> = self
            .db()
            .query_row("SELECT action FROM tokens WHERE token = ?1", [token], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(match s {
            Some(s) => Some(serde_json::from_str(&s)?),
            None => None,
        })
    }
}

/// `label`, or `label-1`, `label-2`… when the user already has a box of that name.
/// A user's count of messages dropped past the backlog cap (0 for an unknown user).
fn missed_count(db: &Connection, platform: &str, user: &str) -> Result<i64> {
    Ok(db
        .query_row(
            "SELECT missed FROM users WHERE platform = ?1 AND user_id = ?2",
            params![platform, user],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

fn unique_label(
    tx: &rusqlite::Transaction<'_>,
    platform: &str,
    user: &str,
    label: &str,
) -> Result<String> {
    let taken = |l: &str| -> rusqlite::Result<bool> {
        Ok(tx
            .query_row(
                "SELECT 1 FROM bindings WHERE platform = ?1 AND user_id = ?2 AND label = ?3",
                params![platform, user, l],
                |_| Ok(true),
            )
            .optional()?
            .unwrap_or(false))
    };
    if !taken(label)? {
        return Ok(label.to_string());
    }
    let mut n = 1;
    loop {
        let l = format!("{label}-{n}");
        if !taken(&l)? {
            return Ok(l);
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> UserId {
        UserId(s.into())
    }

    /// Regression (CI, `stream_cuts_…`): `cloudcode-im link` ran while the just-started bridge created the
    /// database; one of the two got "database is locked" from the schema or the journal mode.
    #[test]
    fn two_processes_creating_the_database_at_once_both_succeed() {
        for round in 0..40 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("im.db");
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
            let other = {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    Store::open(&path, 20).map(|_| ())
                })
            };
            barrier.wait();
            let mine = Store::open(&path, 20).map(|_| ());
            let theirs = other.join().unwrap();
            assert!(
                mine.is_ok() && theirs.is_ok(),
                "round {round}: {mine:?} / {theirs:?}"
            );
        }
    }

    /// Regression (CI, `one_user_switches_between_two_boxes` and `stream_cuts_…`): `cloudcode-im link` opened
    /// the database while the serving bridge wrote, and failed at once with "database is locked".
    #[test]
    fn opening_beside_a_busy_writer_waits_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("im.db");
        let bridge = Store::open(&path, 20).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    bridge
                        .bind(
                            "telegram",
                            &user(&n.to_string()),
                            "1",
                            "ann",
                            "boxA",
                            "alpha",
                        )
                        .unwrap();
                    bridge.rotate_secret("boxA").unwrap();
                    n += 1;
                }
                n
            })
        };
        for i in 0..60 {
            let cli = Store::open(&path, 20)
                .unwrap_or_else(|e| panic!("open #{i} beside the writer failed: {e}"));
            cli.secret("boxB").unwrap();
            cli.bind("telegram", &user("cli"), "1", "cli", "boxB", "beta")
                .unwrap_or_else(|e| panic!("bind #{i} beside the writer failed: {e}"));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let writes = writer.join().unwrap();
        assert!(
            writes > 0,
            "the writer never wrote, so nothing was contended"
        );
    }

    #[test]
    fn rotating_the_secret_unbinds_everyone_of_that_box_only() {
        let st = Store::in_memory(20).unwrap();
        let s1 = st.secret("boxA").unwrap();
        st.bind("telegram", &user("1"), "1", "ann", "boxA", "alpha")
            .unwrap();
        st.bind("telegram", &user("2"), "2", "bob", "boxA", "alpha")
            .unwrap();
        st.bind("telegram", &user("2"), "2", "bob", "boxB", "beta")
            .unwrap();
        let gone = st.rotate_secret("boxA").unwrap();
        assert_eq!(gone.len(), 2);
        assert_ne!(st.secret("boxA").unwrap(), s1);
        assert!(st.bindings_of_box("boxA").unwrap().is_empty());
        assert_eq!(
            st.bindings_of_user("telegram", &user("2")).unwrap().len(),
            1
        );
    }

    #[test]
    fn a_second_box_with_the_same_name_gets_a_suffix_and_rename_refuses_a_taken_name() {
        let st = Store::in_memory(20).unwrap();
        st.bind("telegram", &user("1"), "1", "ann", "boxA", "dev")
            .unwrap();
        st.bind("telegram", &user("1"), "1", "ann", "boxB", "dev")
            .unwrap();
        let labels: Vec<_> = st
            .bindings_of_user("telegram", &user("1"))
            .unwrap()
            .into_iter()
            .map(|b| b.label)
            .collect();
        assert_eq!(labels, ["dev", "dev-1"]);
        assert!(matches!(
            st.rename("telegram", &user("1"), "boxB", "dev"),
            Err(StoreError::NameTaken(_))
        ));
        st.rename("telegram", &user("1"), "boxB", "other").unwrap();
        assert_eq!(
            st.current_box("telegram", &user("1")).unwrap().as_deref(),
            Some("boxB")
        );
    }

    #[test]
    fn the_backlog_keeps_the_newest_messages_and_counts_the_rest_as_missed() {
        let st = Store::in_memory(3).unwrap();
        st.bind("telegram", &user("1"), "1", "ann", "boxA", "a")
            .unwrap();
        let b = st
            .bindings_of_user("telegram", &user("1"))
            .unwrap()
            .remove(0);
        for i in 0..5 {
            st.enqueue(&b, &Outbound::text(format!("m{i}")), None, None)
                .unwrap();
        }
        assert_eq!(st.outbox_len("telegram").unwrap(), 3);
        assert_eq!(st.backlog("telegram", "1").unwrap(), (3, 2));
        assert_eq!(st.take_missed("telegram", "1").unwrap(), 2);
        assert_eq!(st.backlog("telegram", "1").unwrap(), (3, 0));
        assert_eq!(st.take_missed("telegram", "1").unwrap(), 0);
        let first = st.next_outgoing("telegram").unwrap().unwrap();
        assert_eq!(first.body, Outbound::text("m2"));
    }

    #[test]
    fn a_once_key_is_queued_once_even_after_delivery() {
        let st = Store::in_memory(20).unwrap();
        st.bind("telegram", &user("1"), "1", "ann", "boxA", "a")
            .unwrap();
        let b = st
            .bindings_of_user("telegram", &user("1"))
            .unwrap()
            .remove(0);
        assert!(st
            .enqueue(&b, &Outbound::text("answer"), None, Some("msg_1"))
            .unwrap());
        let out = st.next_outgoing("telegram").unwrap().unwrap();
        st.delivered(&out, &[]).unwrap();
        assert!(!st
            .enqueue(&b, &Outbound::text("answer"), None, Some("msg_1"))
            .unwrap());
        assert_eq!(st.outbox_len("telegram").unwrap(), 0);
    }

    #[test]
    fn watermarks_only_move_forward() {
        let st = Store::in_memory(20).unwrap();
        st.set_watermark("b", "s", "msg_002").unwrap();
        st.set_watermark("b", "s", "msg_001").unwrap();
        assert_eq!(st.watermark("b", "s").unwrap().as_deref(), Some("msg_002"));
    }
}
