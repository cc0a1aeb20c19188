//! The language a BEAM program is written in, as its recorded function names say, so that the
//! findings' advice names what its developer writes: `GenServer.reply/2` and a `Task` for an
//! Elixir program, `gen_server:reply/2` and a spawned process for an Erlang one.
//!
//! The recorder names an Elixir function `Module.fun/arity` and an Erlang one
//! `module:fun/arity` (docs/beam.md), so the name of the function a finding is about tells
//! which. Anything else (a Python span, a name without either form) reads as Elixir.

/// The language of a BEAM program's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Elixir,
    Erlang,
}

impl Dialect {
    /// The language `function` (a recorded function's span name) is written in: Erlang for
    /// `module:fun/arity` (and the compiler's names for its funs, `module:-fun/1-fun-0-`).
    pub fn of(function: &str) -> Self {
        let erlang = function.split_once(':').is_some_and(|(module, rest)| {
            module.starts_with(|c: char| c.is_ascii_lowercase())
                && !module.contains([' ', '.'])
                && !rest.is_empty()
        });
        if erlang { Self::Erlang } else { Self::Elixir }
    }

    /// How a server answers a caller after its callback returned.
    pub fn reply_later(self) -> &'static str {
        match self {
            Self::Elixir => "GenServer.reply/2",
            Self::Erlang => "gen_server:reply/2",
        }
    }

    /// Where work moved out of a server runs.
    pub fn worker(self) -> &'static str {
        match self {
            Self::Elixir => "a Task",
            Self::Erlang => "a process spawned for it",
        }
    }

    /// What an `init/1` returns to go on with its work in `handle_continue/2`.
    pub fn continue_from_init(self) -> &'static str {
        match self {
            Self::Elixir => "{:ok, state, {:continue, :load}}",
            Self::Erlang => "{ok, State, {continue, load}}",
        }
    }

    /// How one process per key is found by its key.
    pub fn per_key(self) -> &'static str {
        match self {
            Self::Elixir => "a Registry or PartitionSupervisor",
            Self::Erlang => "pg, or an ETS table of pids by key",
        }
    }

    /// A timer that sends a message again and again, and one sent once.
    pub fn timers(self) -> (&'static str, &'static str) {
        match self {
            Self::Elixir => (":timer.send_interval/2", "Process.send_after/3"),
            Self::Erlang => ("timer:send_interval/2", "erlang:send_after/3"),
        }
    }

    /// A child spec's restart values: restarted only after a crash, never.
    pub fn restarts(self) -> (&'static str, &'static str) {
        match self {
            Self::Elixir => ("restart: :transient", ":temporary"),
            Self::Erlang => ("restart => transient", "temporary"),
        }
    }

    /// How a callback defers its reply: a gen_server's return, a gen_statem's action.
    pub fn no_reply(self) -> (&'static str, &'static str) {
        match self {
            Self::Elixir => ("{:noreply, …}", ":postpone"),
            Self::Erlang => ("{noreply, …}", "postpone"),
        }
    }

    /// What the program calls OTP's generic server.
    pub fn gen_server(self) -> &'static str {
        match self {
            Self::Elixir => "GenServer",
            Self::Erlang => "gen_server",
        }
    }

    /// How a gen_statem answers a caller after its callback returned.
    pub fn statem_reply_later(self) -> &'static str {
        match self {
            Self::Elixir => ":gen_statem.reply/2",
            Self::Erlang => "gen_statem:reply/2",
        }
    }

    /// A call's timeout that never ends.
    pub fn infinity(self) -> &'static str {
        match self {
            Self::Elixir => ":infinity",
            Self::Erlang => "infinity",
        }
    }

    /// Spreading a server's work over more processes.
    pub fn more_hands(self) -> &'static str {
        match self {
            Self::Elixir => {
                "several workers behind a PartitionSupervisor or a pool, or Task.async_stream over its work"
            }
            Self::Erlang => "several workers behind a pool or one per key, or a process per item",
        }
    }

    /// Holding a server's senders back.
    pub fn back_pressure(self) -> &'static str {
        match self {
            Self::Elixir => "a call instead of a cast, or demand as GenStage does",
            Self::Erlang => {
                "a call instead of a cast, or demand: the server asks for the next items"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_names_are_module_colon_function_and_the_rest_elixir() {
        for erlang in [
            "counter:handle_call/3",
            "logsink:-main/0-fun-1-/0",
            "my_app_srv:init/1",
            "bank:main/0",
        ] {
            assert_eq!(Dialect::of(erlang), Dialect::Erlang, "{erlang}");
        }
        for elixir in [
            "Stock.handle_call/3",
            "anonymous fn#1 in Cart.Main.main/0",
            "anonymous fn#0 in Jobs.Worker.start/0",
            ":timer.sleep/1",
            "Elixir.Stock.handle_call/3",
            "process <0.85.0>",
            "receive",
            "GET /api",
        ] {
            assert_eq!(Dialect::of(elixir), Dialect::Elixir, "{elixir}");
        }
    }
}
