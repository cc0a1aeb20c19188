//! Shell integration: the hooks `devtrace record shell-init bash|zsh|fish` prints, and the
//! lines they write, read back as `terminal_command` events.
//!
//! A hook runs at every prompt, so it must cost nothing when no recording is open and little
//! when one is: it checks one file (`DATA/record/active/capturing`, a `stat`), and only while
//! recording appends one JSON line to `DATA/record/active/shell.jsonl` with the shell's
//! built-in `printf`: no process is spawned and no subshell forked per command (bash reads its
//! history line back through a small file), no socket is opened (bash and fish cannot open a Unix socket
//! without a helper process). The recorder follows that file; if it is not running, the lines
//! wait there and are read when it resumes.
//!
//! A command typed with a leading space is not recorded when the shell keeps such commands
//! out of its history (bash `HISTCONTROL=ignorespace`/`ignoreboth`, zsh `HIST_IGNORE_SPACE`,
//! fish always): the same convention people already use to keep a secret out of history.

use serde::Deserialize;
use serde_json::{Value, json};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    pub fn parse(name: &str) -> Option<Self> {
        match name.rsplit('/').next().unwrap_or(name) {
            "bash" | "sh" => Some(Self::Bash),
            "zsh" => Some(Self::Zsh),
            "fish" => Some(Self::Fish),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Bash => "bash",
            Self::Zsh => "zsh",
            Self::Fish => "fish",
        }
    }
}

/// The environment variable a shell started by `devtrace record -- SHELL` carries (the
/// session's id): its commands are recorded wherever they run, not only inside the working
/// tree.
pub const SCOPE_VARIABLE: &str = "DEVTRACE_RECORD_SCOPE";

/// Set for a shell run in capture mode: its hooks mark each command's output (see
/// `capture`).
pub const CAPTURE_VARIABLE: &str = "DEVTRACE_RECORD_CAPTURE";

const BASH: &str = r#"# devtrace shell integration for bash 5+ (from `devtrace record shell-init bash`).
# While `devtrace record` runs, each command is appended to the recording (command line, directory,
# exit code, start and end). When nothing is recorded, a prompt costs one file check.
if [[ $- == *i* && -z ${__devtrace_hooked-} ]]; then
  if (( BASH_VERSINFO[0] < 5 )); then
    printf 'devtrace: shell integration needs bash 5 or newer (this is %s); commands will not be recorded\n' "$BASH_VERSION" >&2
  else
    __devtrace_hooked=1
    __devtrace_active=@ACTIVE@
    __devtrace_x=x
    __devtrace_seq=0
    __devtrace_histno=
    __devtrace_json() {
      local s=$1
      s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\r'/\\r}; s=${s//$'\t'/\\t}
      __devtrace_out=$s
    }
    __devtrace_precmd() {
      local status=$? end=${EPOCHREALTIME/[.,]/}
      if [[ -n ${__devtrace_us-} && -e $__devtrace_active/capturing ]]; then
        local line= number= cmd= HISTTIMEFORMAT= history=$__devtrace_active/.history.$$
        # The history line through a file rather than $(…), which would fork: appended (a
        # rewrite would make ext4 flush it) and read back from a descriptor that follows it.
        {
          if [[ -z ${__devtrace_hfd-} || ! -e $history ]]; then
            [[ -n ${__devtrace_hfd-} ]] && exec {__devtrace_hfd}<&-
            : >>"$history" && exec {__devtrace_hfd}<"$history"
          fi
          builtin history 1 >>"$history" && printf '\0' >>"$history" && IFS= read -r -d '' -u "$__devtrace_hfd" line
        } 2>/dev/null
        line=${line%$'\n'}
        if [[ $line =~ ^[[:space:]]*([0-9]+)[*]?[[:space:]]+(.*)$ ]]; then
          number=${BASH_REMATCH[1]}; line=${BASH_REMATCH[2]}
        fi
        if [[ -n $number && $number != "$__devtrace_histno" ]]; then
          cmd=$line
        elif [[ -n ${__devtrace_first-} && $line == "$__devtrace_first"* ]]; then
          cmd=$line
        elif [[ :$HISTCONTROL: != *:ignorespace:* && :$HISTCONTROL: != *:ignoreboth:* ]]; then
          cmd=${__devtrace_first-}
        fi
        __devtrace_histno=$number
        if [[ -n $cmd ]]; then
          __devtrace_json "$cmd"; cmd=$__devtrace_out
          __devtrace_json "${__devtrace_cwd:-$PWD}"
          (( __devtrace_seq += 1 ))
          { printf '{"shell":"bash","pid":%s,"seq":%s,"cmd":"%s","cwd":"%s","exit":%s,"start_us":%s,"end_us":%s,"scope":"%s"}\n' \
              "$$" "$__devtrace_seq" "$cmd" "$__devtrace_out" "$status" "$__devtrace_us" "$end" "${DEVTRACE_RECORD_SCOPE-}" \
              >>"$__devtrace_active/shell.jsonl"; } 2>/dev/null
          [[ -n ${DEVTRACE_RECORD_CAPTURE-} ]] && printf '\e]6973;D;%s;%s\a' "$$" "$__devtrace_seq"
        fi
        if [[ -e $__devtrace_active/ask ]]; then
          local asked; { read -r asked <"$__devtrace_active/ask"; } 2>/dev/null
          if [[ -n $asked && $asked != "${__devtrace_asked-}" ]]; then
            __devtrace_asked=$asked
            printf 'devtrace: what are you trying now? Add a note (or ignore this): devtrace note "…"\n' >&2
          fi
        fi
      fi
      __devtrace_us= __devtrace_cwd= __devtrace_first=
      return $status
    }
    # PS0 is expanded after a command line is read and before it runs: its arithmetic notes the
    # start (microseconds) and prints nothing; no subshell, no process.
    PS0='${__devtrace_x:0:(__devtrace_us=${EPOCHREALTIME/[.,]/}),0}'"${PS0-}"
    # Capture mode (`devtrace record --capture -- bash`): mark where each command's output
    # begins for the terminal devtrace reads; the end is marked after the prompt's hook line.
    [[ -n ${DEVTRACE_RECORD_CAPTURE-} ]] && PS0='\e]6973;C\a'"$PS0"
    # Before the first simple command: its directory, and its text for commands history did not
    # keep (HISTCONTROL, HISTIGNORE). Another DEBUG trap already set is kept, after this one.
    __devtrace_old_debug=$(trap -p DEBUG)
    __devtrace_old_debug=${__devtrace_old_debug#"trap -- '"}
    __devtrace_old_debug=${__devtrace_old_debug%"' DEBUG"}
    __devtrace_old_debug=${__devtrace_old_debug//"'\\''"/"'"}
    trap '[[ -n ${__devtrace_us-} && -z ${__devtrace_first-} ]] && { __devtrace_first=$BASH_COMMAND; __devtrace_cwd=$PWD; }'"${__devtrace_old_debug:+; $__devtrace_old_debug}" DEBUG
    if [[ "$(declare -p PROMPT_COMMAND 2>/dev/null)" == "declare -a"* ]]; then
      PROMPT_COMMAND=(__devtrace_precmd "${PROMPT_COMMAND[@]}")
    else
      PROMPT_COMMAND="__devtrace_precmd${PROMPT_COMMAND:+; $PROMPT_COMMAND}"
    fi
  fi
fi
"#;

const ZSH: &str = r#"# devtrace shell integration for zsh (from `devtrace record shell-init zsh`).
# While `devtrace record` runs, each command is appended to the recording (command line, directory,
# exit code, start and end). When nothing is recorded, a prompt costs one file check.
if [[ -o interactive && -z ${__devtrace_hooked-} ]]; then
  __devtrace_hooked=1
  __devtrace_active=@ACTIVE@
  zmodload zsh/datetime 2>/dev/null
  autoload -Uz add-zsh-hook
  __devtrace_json() {
    local s=$1
    s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\r'/\\r}; s=${s//$'\t'/\\t}
    REPLY=$s
  }
  __devtrace_seq=0
  __devtrace_preexec() {
    __devtrace_cmd=$1 __devtrace_t=$EPOCHREALTIME __devtrace_cwd=$PWD
    if [[ -o hist_ignore_space && $1 == ' '* ]]; then __devtrace_cmd=; fi
    [[ -n ${DEVTRACE_RECORD_CAPTURE-} ]] && printf '\e]6973;C\a'
  }
  __devtrace_precmd() {
    local exit_status=$? end=$EPOCHREALTIME
    if [[ -n ${__devtrace_cmd-} && -e $__devtrace_active/capturing ]]; then
      local cmd cwd
      __devtrace_json "$__devtrace_cmd"; cmd=$REPLY
      __devtrace_json "$__devtrace_cwd"; cwd=$REPLY
      (( __devtrace_seq += 1 ))
      { print -r -- "{\"shell\":\"zsh\",\"pid\":$$,\"seq\":$__devtrace_seq,\"cmd\":\"$cmd\",\"cwd\":\"$cwd\",\"exit\":$exit_status,\"start\":\"$__devtrace_t\",\"end\":\"$end\",\"scope\":\"${DEVTRACE_RECORD_SCOPE-}\"}" \
          >>"$__devtrace_active/shell.jsonl"; } 2>/dev/null
      [[ -n ${DEVTRACE_RECORD_CAPTURE-} ]] && printf '\e]6973;D;%s;%s\a' "$$" "$__devtrace_seq"
      if [[ -e $__devtrace_active/ask ]]; then
        local asked; { read -r asked <"$__devtrace_active/ask"; } 2>/dev/null
        if [[ -n $asked && $asked != "${__devtrace_asked-}" ]]; then
          __devtrace_asked=$asked
          print -u2 -r -- 'devtrace: what are you trying now? Add a note (or ignore this): devtrace note "…"'
        fi
      fi
    fi
    __devtrace_cmd=
    return $exit_status
  }
  add-zsh-hook preexec __devtrace_preexec
  add-zsh-hook precmd __devtrace_precmd
fi
"#;

const FISH: &str = r#"# devtrace shell integration for fish (from `devtrace record shell-init fish`).
# While `devtrace record` runs, each command is appended to the recording (command line, directory,
# exit code, duration). When nothing is recorded, a prompt costs one file check.
if status is-interactive; and not set -q __devtrace_hooked
  set -g __devtrace_hooked 1
  set -g __devtrace_active @ACTIVE@
  function __devtrace_json
    string replace -a '\\' '\\\\' -- $argv[1] | string replace -a '"' '\\"' | string replace -a \n '\\n' | string replace -a \t '\\t' | string replace -a \r '\\r' | string join '\\n'
  end
  set -g __devtrace_seq 0
  function __devtrace_preexec --on-event fish_preexec
    set -g __devtrace_cwd $PWD
    set -q DEVTRACE_RECORD_CAPTURE; and printf '\e]6973;C\a'
  end
  function __devtrace_postexec --on-event fish_postexec
    set -l exit_status $status
    set -l duration $CMD_DURATION
    if test -e $__devtrace_active/capturing; and test -n "$argv[1]"
      # fish keeps commands typed with a leading space out of history: so does devtrace.
      if string match -q -- ' *' $argv[1]
        return
      end
      set -l cmd (__devtrace_json $argv[1])
      set -l cwd (__devtrace_json $__devtrace_cwd)
      set -q DEVTRACE_RECORD_SCOPE; or set -l DEVTRACE_RECORD_SCOPE ''
      set -g __devtrace_seq (math $__devtrace_seq + 1)
      printf '{"shell":"fish","pid":%s,"seq":%s,"cmd":"%s","cwd":"%s","exit":%s,"duration_ms":%s,"scope":"%s"}\n' $fish_pid $__devtrace_seq "$cmd" "$cwd" $exit_status $duration "$DEVTRACE_RECORD_SCOPE" >>$__devtrace_active/shell.jsonl 2>/dev/null
      set -q DEVTRACE_RECORD_CAPTURE; and printf '\e]6973;D;%s;%s\a' $fish_pid $__devtrace_seq
      if test -e $__devtrace_active/ask
        read -l asked <$__devtrace_active/ask 2>/dev/null
        if test -n "$asked"; and test "$asked" != "$__devtrace_asked"
          set -g __devtrace_asked $asked
          printf 'devtrace: what are you trying now? Add a note (or ignore this): devtrace note "…"\n' >&2
        end
      end
    end
  end
end
"#;

/// Quotes `text` for a single-quoted shell word (bash, zsh).
fn posix_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Quotes `text` for fish (backslash and single quote are escaped inside single quotes).
fn fish_quote(text: &str) -> String {
    format!("'{}'", text.replace('\\', r"\\").replace('\'', r"\'"))
}

/// The integration script for `shell`, reaching the recordings under `record_root`.
pub fn init_script(shell: Shell, record_root: &Path) -> String {
    let active = record_root.join("active");
    let active = active.to_string_lossy();
    match shell {
        Shell::Bash => BASH.replace("@ACTIVE@", &posix_quote(&active)),
        Shell::Zsh => ZSH.replace("@ACTIVE@", &posix_quote(&active)),
        Shell::Fish => FISH.replace("@ACTIVE@", &fish_quote(&active)),
    }
}

/// One line a hook wrote.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct HookLine {
    pub shell: String,
    #[serde(default)]
    pub pid: u64,
    pub cmd: String,
    #[serde(default)]
    pub cwd: String,
    #[serde(default)]
    pub exit: i64,
    /// Epoch seconds with a fraction, as zsh prints it (`.` or `,` by locale).
    #[serde(default)]
    pub start: String,
    #[serde(default)]
    pub end: String,
    /// Epoch microseconds, as bash computes them.
    #[serde(default)]
    pub start_us: Option<u64>,
    #[serde(default)]
    pub end_us: Option<u64>,
    /// fish: the duration it measured.
    #[serde(default)]
    pub duration_ms: Option<f64>,
    #[serde(default)]
    pub scope: String,
    /// The command's number in its shell: what capture mode's output is matched by.
    #[serde(default)]
    pub seq: Option<u64>,
}

/// Parses a hook's line. Control characters the hook could not escape are escaped first.
pub fn parse_line(line: &[u8]) -> Option<HookLine> {
    let text = String::from_utf8_lossy(line);
    if let Ok(parsed) = serde_json::from_str(&text) {
        return Some(parsed);
    }
    let mut cleaned = String::with_capacity(text.len());
    for c in text.chars() {
        if (c as u32) < 0x20 {
            cleaned.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            cleaned.push(c);
        }
    }
    serde_json::from_str(&cleaned).ok()
}

/// "1767225600.123456" (or with a comma) → nanoseconds.
fn epoch_nanos(text: &str) -> Option<u64> {
    let text = text.replace(',', ".");
    let (seconds, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let seconds: u64 = seconds.parse().ok()?;
    let digits: String = fraction.chars().take(9).collect();
    let nanos: u64 = if digits.is_empty() {
        0
    } else {
        digits.parse::<u64>().ok()? * 10u64.pow(9 - digits.len() as u32)
    };
    Some(seconds * 1_000_000_000 + nanos)
}

/// Whether the command line is devtrace recording itself (`devtrace note`, `devtrace record
/// …`): those are recorded as what they do, not as commands.
pub fn is_recorder_command(line: &str) -> bool {
    let mut words = line.split_whitespace();
    let first = words.next().unwrap_or("");
    let program = first.rsplit('/').next().unwrap_or(first);
    program == "devtrace" && matches!(words.next(), Some("note" | "record"))
}

/// Splits a simple command line into program and arguments (quotes honoured); `None` when the
/// line uses shell syntax beyond words (pipes, redirections, substitutions, several commands),
/// which is then kept whole as the command.
pub fn split_simple(line: &str) -> Option<(String, Vec<String>)> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '|' | '&' | ';' | '<' | '>' | '`' | '(' | ')' | '\n' | '*' | '?' | '~' | '#' => {
                return None;
            }
            '$' => return None,
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return None,
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return None,
                        },
                        Some('$' | '`') => return None,
                        Some(c) => word.push(c),
                        None => return None,
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next()?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() || words[0].contains('=') {
        return None;
    }
    let program = words.remove(0);
    Some((program, words))
}

/// The `terminal_command` event of a hook line; `received` stands in for the start when the
/// shell gave only a duration (fish).
pub fn to_event(line: &HookLine, received: u64) -> Value {
    let start = line
        .start_us
        .map(|us| us * 1000)
        .or_else(|| epoch_nanos(&line.start));
    let end = line
        .end_us
        .map(|us| us * 1000)
        .or_else(|| epoch_nanos(&line.end));
    let (start, duration_ms) = match (start, end, line.duration_ms) {
        (Some(start), Some(end), _) => (start, end.saturating_sub(start) as f64 / 1e6),
        (_, _, Some(ms)) => (received.saturating_sub((ms * 1e6) as u64), ms),
        (Some(start), None, None) => (start, 0.0),
        _ => (received, 0.0),
    };
    let (cmd, args) = split_simple(&line.cmd).unwrap_or_else(|| (line.cmd.clone(), Vec::new()));
    let mut event = json!({
        "t": crate::timestamp(start),
        "type": "terminal_command",
        "cmd": cmd,
        "args": args,
        "command_line": line.cmd,
        "exit_code": line.exit,
        "duration_ms": (duration_ms * 1000.0).round() / 1000.0,
        "shell": line.shell,
    });
    if !line.cwd.is_empty() {
        event["cwd"] = json!(line.cwd);
    }
    if let Some(seq) = line.seq {
        event["shell_pid"] = json!(line.pid);
        event["seq"] = json!(seq);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_name_the_active_recording_quoted() {
        let script = init_script(Shell::Bash, Path::new("/home/o'neil/data/record"));
        assert!(script.contains(r#"__devtrace_active='/home/o'\''neil/data/record/active'"#));
        assert!(!script.contains("@ACTIVE@"));
        let fish = init_script(Shell::Fish, Path::new("/d/record"));
        assert!(fish.contains("set -g __devtrace_active '/d/record/active'"));
        assert_eq!(Shell::parse("/usr/bin/zsh"), Some(Shell::Zsh));
        assert_eq!(Shell::parse("tcsh"), None);
    }

    #[test]
    fn hook_lines_become_terminal_commands() {
        let line = parse_line(br#"{"shell":"bash","pid":7,"cmd":"pytest -q tests/test_cart.py","cwd":"/w/shop","exit":1,"start_us":1767225600250000,"end_us":1767225601750000,"scope":""}"#).unwrap();
        let event = to_event(&line, 0);
        assert_eq!(event["t"], "2026-01-01T00:00:00.250Z");
        assert_eq!(event["cmd"], "pytest");
        assert_eq!(event["args"], json!(["-q", "tests/test_cart.py"]));
        assert_eq!(event["exit_code"], 1);
        assert_eq!(event["duration_ms"], 1500.0);
        assert_eq!(event["cwd"], "/w/shop");
        let zsh = parse_line(br#"{"shell":"zsh","cmd":"make","exit":0,"start":"1767225600.5","end":"1767225601,000000"}"#).unwrap();
        assert_eq!(to_event(&zsh, 0)["duration_ms"], 500.0);
        let fish = parse_line(br#"{"shell":"fish","pid":7,"cmd":"make","cwd":"/w","exit":0,"duration_ms":250,"scope":""}"#).unwrap();
        let event = to_event(&fish, 1_767_225_601_000_000_000);
        assert_eq!(event["t"], "2026-01-01T00:00:00.750Z");
    }

    #[test]
    fn raw_control_characters_do_not_lose_the_line() {
        let line = parse_line(b"{\"shell\":\"bash\",\"cmd\":\"echo \x01hi\",\"exit\":0}").unwrap();
        assert_eq!(line.cmd, "echo \u{1}hi");
        assert_eq!(parse_line(b"{\"shell\":\"bash\",\"cmd\":"), None);
    }

    #[test]
    fn simple_commands_split_and_shell_syntax_stays_whole() {
        assert_eq!(
            split_simple(r#"git commit -m "fix the total" --author='A B'"#),
            Some((
                "git".into(),
                vec![
                    "commit".into(),
                    "-m".into(),
                    "fix the total".into(),
                    "--author=A B".into()
                ]
            ))
        );
        assert_eq!(split_simple("pytest -q | tee out"), None);
        assert_eq!(split_simple("FOO=1 make"), None);
        assert_eq!(split_simple("echo $HOME"), None);
        assert!(is_recorder_command("devtrace note \"try the cache\""));
        assert!(is_recorder_command("./target/debug/devtrace record status"));
        assert!(!is_recorder_command("devtrace sessions"));
    }
}
