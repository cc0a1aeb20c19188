//! The shell integration's capture mode: each command's output, taken from the terminal the
//! shell writes to.
//!
//! `devtrace record --capture -- SHELL` runs the shell on a pseudo-terminal devtrace reads from
//! (as `script(1)` does). In that mode the hooks mark where each command's output begins and
//! ends with private OSC sequences (terminals ignore unknown ones; these never reach the
//! terminal anyway): `ESC ] 6973 ; C BEL` when a command starts, `ESC ] 6973 ; D ; PID ; SEQ BEL`
//! when it has finished, naming the shell and the command's sequence number, which its spool
//! line carries too. The [`Splitter`] removes the markers from the stream and returns each
//! command's output, bounded to its first and last bytes. Pure: no terminal, no process.

/// The marker's introducer: `ESC ] 6973 ;`.
const INTRODUCER: &[u8] = b"\x1b]6973;";
/// Longest marker accepted; a longer "marker" is passed through as ordinary output.
const MAX_MARKER: usize = 64;

/// One command's output, as the terminal showed it (stdout and stderr together).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandOutput {
    pub pid: u32,
    pub seq: u64,
    /// The first and last bytes (lossy UTF-8), with what was left out between said.
    pub text: String,
    /// Bytes the command wrote in all.
    pub bytes: u64,
}

/// Splits a terminal's output stream into what to show and each command's output.
#[derive(Debug)]
pub struct Splitter {
    keep_head: usize,
    keep_tail: usize,
    /// A marker (or what may become one) cut by the end of a read.
    partial: Vec<u8>,
    capturing: bool,
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    total: u64,
}

impl Splitter {
    /// Keeps up to `keep_head` first and `keep_tail` last bytes of each command's output.
    pub fn new(keep_head: usize, keep_tail: usize) -> Self {
        Self {
            keep_head,
            keep_tail,
            partial: Vec::new(),
            capturing: false,
            head: Vec::new(),
            tail: std::collections::VecDeque::new(),
            total: 0,
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        if !self.capturing || bytes.is_empty() {
            return;
        }
        self.total += bytes.len() as u64;
        let room = self.keep_head.saturating_sub(self.head.len());
        let (head, rest) = bytes.split_at(room.min(bytes.len()));
        self.head.extend_from_slice(head);
        self.tail.extend(rest);
        let excess = self.tail.len().saturating_sub(self.keep_tail);
        self.tail.drain(..excess);
    }

    fn finish(&mut self, pid: u32, seq: u64) -> CommandOutput {
        let head = String::from_utf8_lossy(&self.head).into_owned();
        let (a, b) = self.tail.as_slices();
        let tail = String::from_utf8_lossy(&[a, b].concat()).into_owned();
        let kept = (self.head.len() + self.tail.len()) as u64;
        // The terminal's line endings, as a file would have them.
        let (head, tail) = (head.replace("\r\n", "\n"), tail.replace("\r\n", "\n"));
        let text = if self.total > kept {
            format!("{head}\n… [{} bytes not kept] …\n{tail}", self.total - kept)
        } else {
            head + &tail
        };
        let output = CommandOutput {
            pid,
            seq,
            text,
            bytes: self.total,
        };
        self.capturing = false;
        self.head.clear();
        self.tail.clear();
        self.total = 0;
        output
    }

    /// Takes the next bytes from the terminal: appends what should be shown to `show` and
    /// returns the outputs of commands that finished in them.
    pub fn feed(&mut self, bytes: &[u8], show: &mut Vec<u8>) -> Vec<CommandOutput> {
        let mut data = std::mem::take(&mut self.partial);
        data.extend_from_slice(bytes);
        let mut finished = Vec::new();
        let mut i = 0;
        let mut plain_from = 0;
        while i < data.len() {
            if data[i] != 0x1b {
                i += 1;
                continue;
            }
            let rest = &data[i..];
            let known = rest.len().min(INTRODUCER.len());
            if rest[..known] != INTRODUCER[..known] {
                i += 1;
                continue;
            }
            // Possibly a marker: flush what came before it.
            let before = &data[plain_from..i];
            show.extend_from_slice(before);
            self.keep(before);
            let Some(end) = rest.iter().take(MAX_MARKER).position(|b| *b == 0x07) else {
                if rest.len() < MAX_MARKER {
                    // Cut by the end of this read: wait for the rest.
                    self.partial = rest.to_vec();
                    return finished;
                }
                // Too long to be ours: ordinary bytes.
                plain_from = i;
                i += 1;
                continue;
            };
            let body = &rest[INTRODUCER.len().min(end)..end];
            match body {
                b"C" => {
                    self.capturing = true;
                    self.head.clear();
                    self.tail.clear();
                    self.total = 0;
                }
                _ if body.starts_with(b"D;") => {
                    let text = String::from_utf8_lossy(&body[2..]);
                    let mut parts = text.split(';');
                    let pid = parts.next().and_then(|p| p.parse().ok());
                    let seq = parts.next().and_then(|s| s.parse().ok());
                    if let (Some(pid), Some(seq)) = (pid, seq)
                        && self.capturing
                    {
                        finished.push(self.finish(pid, seq));
                    }
                    self.capturing = false;
                }
                _ => {}
            }
            i += end + 1;
            plain_from = i;
        }
        let rest = &data[plain_from..];
        show.extend_from_slice(rest);
        self.keep(rest);
        finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_removed_and_each_command_gets_its_output() {
        let mut splitter = Splitter::new(1024, 1024);
        let mut show = Vec::new();
        let stream = b"$ make\r\n\x1b]6973;C\x07building\r\nerror: x\r\n\x1b]6973;D;42;7\x07$ ";
        let done = splitter.feed(stream, &mut show);
        assert_eq!(show, b"$ make\r\nbuilding\r\nerror: x\r\n$ ");
        assert_eq!(
            done,
            [CommandOutput {
                pid: 42,
                seq: 7,
                text: "building\nerror: x\n".into(),
                bytes: 20
            }]
        );
    }

    #[test]
    fn a_marker_cut_between_reads_is_still_found() {
        let mut splitter = Splitter::new(1024, 1024);
        let mut show = Vec::new();
        let stream = b"\x1b]6973;C\x07hello\n\x1b]6973;D;1;1\x07\x1b[0m$ ";
        let mut done = Vec::new();
        for byte in stream {
            done.extend(splitter.feed(&[*byte], &mut show));
        }
        assert_eq!(show, b"hello\n\x1b[0m$ ");
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].text, "hello\n");
    }

    #[test]
    fn long_output_keeps_its_head_and_tail_and_other_escapes_pass() {
        let mut splitter = Splitter::new(4, 4);
        let mut show = Vec::new();
        let mut stream = b"\x1b]6973;C\x07".to_vec();
        stream.extend_from_slice(b"0123456789\x1b]0;title\x07");
        stream.extend_from_slice(b"\x1b]6973;D;5;2\x07");
        let done = splitter.feed(&stream, &mut show);
        assert_eq!(show, b"0123456789\x1b]0;title\x07");
        assert_eq!(done[0].bytes, 20);
        assert_eq!(done[0].text, "0123\n… [12 bytes not kept] …\ntle\u{7}");
        // No start marker: nothing is captured.
        let none = splitter.feed(b"plain\x1b]6973;D;5;3\x07", &mut show);
        assert!(none.is_empty());
    }
}
