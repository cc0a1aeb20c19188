//! OTLP metrics in the store: one row per series, one row per data point.
//!
//! A series is everything that identifies a stream of points (resource and scope, metric name,
//! unit, kind, temporality, the point's attributes), stored once with the session it belongs to
//! and the usage quantity it measures (cost, tokens, lines changed), as the caller classified
//! it. Points are `(series, time, start)`-keyed rows of a `WITHOUT ROWID` table holding the
//! scalar value (and, for histograms and summaries, the count and the rest of the point,
//! postcard-encoded): an exporter's retry re-sends the same points, which the key stores once.
//!
//! Temporality is resolved when read, not when written, so points may arrive in any order: a
//! delta point adds its value; a cumulative point adds its increase over the previous point of
//! the same series and start time (its whole value when it is the first).
//!
//! This module owns the metrics SQL; it must not know any agent's metric names (the caller's
//! classifier does).

use crate::Result;
use devtrace_model::metrics::{
    Metric, MetricBatch, MetricKind, MetricPoint, PointValue, Temporality, Usage, UsageQuantity,
};
use devtrace_model::{KeyValue, TraceId};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use std::collections::HashMap;

/// What the caller knows about a series: the session it belongs to and what it measures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeriesTags {
    pub session: Option<TraceId>,
    pub quantity: Option<UsageQuantity>,
}

/// Classifies a data point's series (its metric, resource and the point's own attributes).
pub type Classifier<'a> = &'a dyn Fn(&MetricBatch, &Metric, &MetricPoint) -> SeriesTags;

/// One series and the points that arrived for it, ready to insert.
#[derive(Clone, Debug)]
pub struct SeriesRows {
    /// Identity of the series (a hash of everything that identifies it).
    pub key: [u8; 16],
    pub name: String,
    pub unit: String,
    pub kind: MetricKind,
    pub temporality: Temporality,
    pub monotonic: bool,
    pub service: String,
    pub tags: SeriesTags,
    /// Resource, scope and point attributes, postcard-encoded and compressed.
    pub attributes: Vec<u8>,
    pub points: Vec<PointRow>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PointRow {
    pub time_unix_nano: u64,
    pub start_unix_nano: u64,
    pub value: f64,
    /// Histograms and summaries: how many measurements.
    pub count: Option<u64>,
    /// Histograms and summaries: the rest of the point, postcard-encoded.
    pub data: Option<Vec<u8>>,
}

/// The attributes a series is identified by, as stored.
#[derive(Serialize)]
struct SeriesAttributes<'a> {
    resource: &'a [KeyValue],
    scope_name: &'a str,
    scope_version: &'a str,
    point: &'a [KeyValue],
}

/// Groups a batch's points by series, classifying each series once.
pub fn prepare_metrics(batch: &MetricBatch, classify: Classifier<'_>) -> Vec<SeriesRows> {
    let mut out: Vec<SeriesRows> = Vec::new();
    let mut index: HashMap<[u8; 16], usize> = HashMap::new();
    for metric in &batch.metrics {
        let resource = batch.resource_of(metric);
        let scope = batch.scope_of(metric);
        for point in &metric.points {
            let mut attributes = point.attributes.clone();
            attributes.sort_by(|a, b| a.key.cmp(&b.key));
            let identity = SeriesAttributes {
                resource: &resource.attributes,
                scope_name: &scope.name,
                scope_version: &scope.version,
                point: &attributes,
            };
            let encoded = postcard::to_stdvec(&identity).expect("attributes serialise");
            let mut hasher = blake3::Hasher::new();
            hasher.update(&encoded);
            for part in [
                metric.name.as_str(),
                metric.unit.as_str(),
                metric.kind.as_str(),
            ] {
                hasher.update(&(part.len() as u64).to_le_bytes());
                hasher.update(part.as_bytes());
            }
            hasher.update(&[
                metric.temporality.to_otlp() as u8,
                u8::from(metric.monotonic),
            ]);
            let mut key = [0u8; 16];
            key.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
            let slot = *index.entry(key).or_insert_with(|| {
                out.push(SeriesRows {
                    key,
                    name: metric.name.clone(),
                    unit: metric.unit.clone(),
                    kind: metric.kind,
                    temporality: metric.temporality,
                    monotonic: metric.monotonic,
                    service: resource.service_name().to_owned(),
                    tags: classify(batch, metric, point),
                    attributes: zstd::bulk::compress(&encoded, 3).expect("zstd of memory"),
                    points: Vec::new(),
                });
                out.len() - 1
            });
            out[slot].points.push(point_row(point));
        }
    }
    out
}

fn point_row(point: &MetricPoint) -> PointRow {
    let (count, data) = match &point.value {
        PointValue::Int(_) | PointValue::Double(_) => (None, None),
        other => (
            Some(other.count()),
            Some(postcard::to_stdvec(other).expect("point values serialise")),
        ),
    };
    PointRow {
        time_unix_nano: point.time_unix_nano,
        start_unix_nano: point.start_unix_nano,
        value: point.value.scalar(),
        count,
        data,
    }
}

pub(crate) const MIGRATION: &str = "
    CREATE TABLE metric_series (
        id           INTEGER PRIMARY KEY,
        key          BLOB NOT NULL UNIQUE CHECK (length(key) = 16),
        name         TEXT NOT NULL,
        unit         TEXT NOT NULL,
        kind         INTEGER NOT NULL,
        temporality  INTEGER NOT NULL,
        monotonic    INTEGER NOT NULL,
        service      TEXT NOT NULL,
        session      BLOB CHECK (session IS NULL OR length(session) = 16),
        quantity     TEXT,
        attributes   BLOB NOT NULL
    );
    CREATE INDEX metric_series_by_session ON metric_series(session) WHERE session IS NOT NULL;
    CREATE INDEX metric_series_by_quantity ON metric_series(quantity) WHERE quantity IS NOT NULL;
    CREATE TABLE metric_points (
        series    INTEGER NOT NULL,
        time_ns   INTEGER NOT NULL,
        start_ns  INTEGER NOT NULL,
        value     REAL NOT NULL,
        count     INTEGER,
        data      BLOB,
        PRIMARY KEY (series, time_ns, start_ns)
    ) WITHOUT ROWID;
    INSERT INTO counters(name, value) VALUES ('metric_points', 0);";

/// Series key → row id, remembered across transactions by the writer.
#[derive(Default)]
pub(crate) struct SeriesCache {
    ids: HashMap<[u8; 16], i64>,
}

impl SeriesCache {
    fn id(&mut self, tx: &Transaction<'_>, series: &SeriesRows) -> Result<i64> {
        if let Some(id) = self.ids.get(&series.key) {
            return Ok(*id);
        }
        let existing: Option<i64> = tx
            .prepare_cached("SELECT id FROM metric_series WHERE key = ?1")?
            .query_row(params![&series.key[..]], |row| row.get(0))
            .optional()?;
        let id = match existing {
            Some(id) => id,
            None => tx
                .prepare_cached(
                    "INSERT INTO metric_series (key, name, unit, kind, temporality, monotonic,
                         service, session, quantity, attributes)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
                )?
                .query_row(
                    params![
                        &series.key[..],
                        series.name,
                        series.unit,
                        series.kind.code(),
                        series.temporality.to_otlp(),
                        series.monotonic,
                        series.service,
                        series.tags.session.map(|id| id.0.to_vec()),
                        series.tags.quantity.map(UsageQuantity::as_str),
                        series.attributes,
                    ],
                    |row| row.get(0),
                )?,
        };
        self.ids.insert(series.key, id);
        Ok(id)
    }

    pub(crate) fn clear(&mut self) {
        self.ids.clear();
    }
}

/// Inserts the points (a point already stored is left as it is); returns how many were new.
pub(crate) fn write_series(
    tx: &Transaction<'_>,
    cache: &mut SeriesCache,
    series: &[SeriesRows],
) -> Result<i64> {
    let mut added = 0i64;
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO metric_points (series, time_ns, start_ns, value, count, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for rows in series {
        let id = cache.id(tx, rows)?;
        for point in &rows.points {
            added += insert.execute(params![
                id,
                point.time_unix_nano as i64,
                point.start_unix_nano as i64,
                point.value,
                point.count.map(|c| c as i64),
                point.data,
            ])? as i64;
        }
    }
    Ok(added)
}

/// Which usage to add up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageQuery {
    /// Only these sessions (by trace id); `None` means every series, with or without one.
    pub sessions: Option<Vec<TraceId>>,
    /// Only points at or after this time.
    pub since_unix_nano: Option<u64>,
    /// Only series sent by this service (`claude-code`, `gemini-cli`, …).
    pub service: Option<String>,
}

/// One session's (or one day's) usage, as its agent reported it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UsageTotal {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<TraceId>,
    /// The UTC day (its start, ns) for per-day totals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day_unix_nano: Option<u64>,
    /// Per-day totals: the sessions with points that day.
    pub sessions: u64,
    pub usage: Usage,
}

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// How much each point adds: its value for delta series, its increase over the previous point
/// of the same cumulative stream (series and start time) otherwise.
const INCREASES_SQL: &str = "
    SELECT s.session, s.quantity, p.time_ns,
        CASE WHEN s.temporality = 2
             THEN p.value - coalesce(lag(p.value) OVER (
                      PARTITION BY p.series, p.start_ns ORDER BY p.time_ns), 0)
             ELSE p.value END
    FROM metric_series s JOIN metric_points p ON p.series = s.id
    WHERE s.quantity IS NOT NULL AND s.kind = 2";

/// What one point adds: (its session, its quantity, its time, the amount).
pub(crate) type Increase = (Option<TraceId>, UsageQuantity, u64, f64);

/// A row of [`INCREASES_SQL`] (or its PostgreSQL twin) as an increase, unless it is before
/// `since`: the window applies to the increases, not the points, so the first point inside it
/// still adds only what it added since the point before it.
pub(crate) fn increase_of(
    session: Option<Vec<u8>>,
    quantity: &str,
    time: i64,
    value: f64,
    since: u64,
) -> Option<Increase> {
    if (time as u64) < since {
        return None;
    }
    let quantity = UsageQuantity::parse(quantity)?;
    let session = session.and_then(|bytes| TraceId::from_slice(&bytes));
    Some((session, quantity, time as u64, value))
}

fn increases(conn: &Connection, query: &UsageQuery) -> Result<Vec<Increase>> {
    let mut sql = INCREASES_SQL.to_owned();
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(service) = &query.service {
        values.push(service.clone().into());
        sql.push_str(&format!(" AND s.service = ?{}", values.len()));
    }
    if let Some(sessions) = &query.sessions {
        if sessions.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = sessions
            .iter()
            .map(|id| {
                values.push(id.0.to_vec().into());
                format!("?{}", values.len())
            })
            .collect();
        sql.push_str(&format!(" AND s.session IN ({})", marks.join(", ")));
    }
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(rusqlite::params_from_iter(values), |row| {
        let session: Option<Vec<u8>> = row.get(0)?;
        let quantity: String = row.get(1)?;
        let time: i64 = row.get(2)?;
        let value: f64 = row.get(3)?;
        Ok((session, quantity, time, value))
    })?;
    let since = query.since_unix_nano.unwrap_or(0);
    let mut out = Vec::new();
    for row in rows {
        let (session, quantity, time, value) = row?;
        out.extend(increase_of(session, &quantity, time, value, since));
    }
    Ok(out)
}

/// Usage per session of the sessions in `query` (those with metrics).
pub(crate) fn usage_by_session(conn: &Connection, query: &UsageQuery) -> Result<Vec<UsageTotal>> {
    Ok(totals_by_session(increases(conn, query)?))
}

/// Usage per UTC day, oldest first.
pub(crate) fn usage_by_day(conn: &Connection, query: &UsageQuery) -> Result<Vec<UsageTotal>> {
    Ok(totals_by_day(increases(conn, query)?))
}

/// Increases added up per session (those with one).
pub(crate) fn totals_by_session(increases: Vec<Increase>) -> Vec<UsageTotal> {
    let mut totals: HashMap<TraceId, Vec<(UsageQuantity, f64)>> = HashMap::new();
    for (session, quantity, _, value) in increases {
        if let Some(session) = session {
            totals.entry(session).or_default().push((quantity, value));
        }
    }
    let mut out: Vec<UsageTotal> = totals
        .into_iter()
        .map(|(session, totals)| UsageTotal {
            session: Some(session),
            day_unix_nano: None,
            sessions: 1,
            usage: Usage::from_totals(&totals),
        })
        .collect();
    out.sort_by_key(|t| t.session);
    out
}

/// Increases added up per UTC day, oldest first.
pub(crate) fn totals_by_day(increases: Vec<Increase>) -> Vec<UsageTotal> {
    type Day = (
        Vec<(UsageQuantity, f64)>,
        std::collections::HashSet<TraceId>,
    );
    let mut days: std::collections::BTreeMap<u64, Day> = std::collections::BTreeMap::new();
    for (session, quantity, time, value) in increases {
        let day = (time as i64 / NANOS_PER_DAY * NANOS_PER_DAY) as u64;
        let entry = days.entry(day).or_default();
        entry.0.push((quantity, value));
        entry.1.extend(session);
    }
    days.into_iter()
        .map(|(day, (totals, sessions))| UsageTotal {
            session: None,
            day_unix_nano: Some(day),
            sessions: sessions.len() as u64,
            usage: Usage::from_totals(&totals),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use devtrace_model::{Resource, Scope};

    fn point(start: u64, time: u64, value: f64, kind: &str) -> MetricPoint {
        MetricPoint {
            attributes: vec![KeyValue::new("type", kind)],
            start_unix_nano: start,
            time_unix_nano: time,
            flags: 0,
            value: PointValue::Double(value),
        }
    }

    #[test]
    fn points_group_by_series_and_the_classifier_sees_each_series_once() {
        let batch = MetricBatch {
            resources: vec![Resource {
                attributes: vec![KeyValue::new("service.name", "claude-code")],
                ..Default::default()
            }],
            scopes: vec![Scope::default()],
            metrics: vec![Metric {
                name: "claude_code.token.usage".into(),
                description: String::new(),
                unit: "tokens".into(),
                kind: MetricKind::Sum,
                temporality: Temporality::Delta,
                monotonic: true,
                points: vec![
                    point(1, 2, 10.0, "input"),
                    point(2, 3, 5.0, "input"),
                    point(1, 2, 7.0, "output"),
                ],
                resource: 0,
                scope: 0,
            }],
        };
        let calls = std::cell::Cell::new(0);
        let classify = |_: &MetricBatch, _: &Metric, p: &MetricPoint| {
            calls.set(calls.get() + 1);
            SeriesTags {
                session: None,
                quantity: Some(if p.attributes[0].value.as_str() == Some("input") {
                    UsageQuantity::InputTokens
                } else {
                    UsageQuantity::OutputTokens
                }),
            }
        };
        let series = prepare_metrics(&batch, &classify);
        assert_eq!(series.len(), 2);
        assert_eq!(calls.get(), 2);
        assert_eq!(series[0].points.len(), 2);
        assert_eq!(series[0].service, "claude-code");
        assert_eq!(series[1].tags.quantity, Some(UsageQuantity::OutputTokens));
        assert_ne!(series[0].key, series[1].key);
    }
}
