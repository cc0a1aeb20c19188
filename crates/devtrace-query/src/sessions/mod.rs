//! The read side of development sessions, shared by the CLI (`devtrace sessions`,
//! `devtrace session show`, `devtrace insights --sessions`), the REST API, the MCP tools
//! (`list_sessions`, `session_overview`, `compare_sessions`, `check_insights`) and the web UI.
//! Each part owns one question, and the parts use each other downwards only:
//!
//! - [`resolve`]: which session an id names, and the one "no session matches" message;
//! - [`analysis`]: a session's trace loaded and analysed (findings, tokens), and the runs
//!   recorded while it ran;
//! - [`tokens`]: token totals and cost, the per-request table, the cache-break roll-up;
//! - [`recorded`]: a person's recorded session (`trace-1.0.0`): task, final patch, tests;
//! - [`list`]: listings with filters and their numbers, agents' usage per day;
//! - [`overview`]: one session's timeline (turns, replies, tool calls with outcome, diffs,
//!   outputs, notes, linked `devtrace run` traces, sub-agents) with its findings inline;
//! - [`origin`]: the session command that made a recorded run (from a run back to its session);
//! - [`insights`]: what recurs across a repository's recent sessions, as quoted observations;
//! - [`compare`]: two sessions side by side;
//! - [`words`], [`text`]: numbers as words, and one session's header, entries and findings as
//!   text;
//! - [`page`]: the one paged rendering of a session's text that MCP (`session_overview`),
//!   the CLI (`devtrace session show`) and REST (`/api/v1/sessions/{id}/text`) each call.
//!
//! Each answer is a plain serialisable struct; the names below are the read side's public face.

pub mod analysis;
pub mod compare;
pub mod insights;
pub mod list;
pub mod origin;
pub mod overview;
pub mod page;
pub mod recorded;
pub mod resolve;
pub mod text;
pub mod tokens;
pub mod words;

pub use insights::{
    CHECK_INSIGHTS_LIMIT, INSIGHT_SESSIONS, InsightItem, InsightsAnswer, check_insights,
    render_insights, render_insights_with, session_insights,
};
pub use list::{
    DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, SessionFilter, SessionItem, UsageDay, list_sessions,
    render_list, render_usage_days, repository_argument, session_item, usage_per_day,
};
pub use origin::{RunOrigin, run_origin};
pub use overview::{LinkedRun, SessionOverview, TimelineEntry, session_overview};
pub use page::{PageRequest, SESSION_LEGEND, SessionPage, render_page};
pub use recorded::{
    FINAL_PATCH_SHOWN, RecordedActivity, RecordedFacts, RecordedSummary, RecordedTests,
    recorded_summary, recorded_summary_line,
};
pub use resolve::{Face, no_session, resolve_session, session_error};
pub use text::{
    finding_kinds, overview_header, session_finding_text, text_timeline, timeline_entry_text,
    timeline_origin,
};
pub use words::{format_cost, format_lines, format_offset, usage_line};

#[cfg(test)]
mod tests {
    use super::list::repository_argument;

    #[test]
    fn a_repository_argument_is_a_canonical_directory_or_taken_as_given() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("app")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "").unwrap();
        let canonical = std::fs::canonicalize(dir.path()).unwrap();
        let roundabout = format!("{}/app/../app/", dir.path().display());
        assert_eq!(
            repository_argument(&roundabout),
            canonical.join("app").display().to_string()
        );
        for as_given in [
            "https://github.com/acme/shop",
            "/path/to/a/directory/elsewhere",
        ] {
            assert_eq!(repository_argument(&format!(" {as_given} ")), as_given);
        }
        let file = format!("{}/notes.txt", dir.path().display());
        assert_eq!(repository_argument(&file), file, "only directories resolve");
    }
}
