//! Usage errors found after clap has parsed the command line: a combination of flags a command
//! cannot work with, or a value clap cannot check on its own. A command returns a
//! [`UsageError`] (through [`usage!`]) instead of a plain error, and `main` reports it the way
//! clap reports its own (`error: …`, the command's usage line, a pointer to `--help`) with
//! exit code 2, so every usage mistake looks and exits alike (docs/cli.md).

use clap::CommandFactory;

/// A command line the command refuses before doing anything; the message says what to give.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// `return Err(UsageError(format!(…)).into())`: the command line is wrong, exit code 2.
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err($crate::usage::UsageError(format!($($arg)*)).into())
    };
}
pub(crate) use usage;

/// The subcommand path a parsed command line ran ("compare", "token create"), for its usage line.
pub fn subcommand_path(matches: &clap::ArgMatches) -> Vec<String> {
    let mut path = Vec::new();
    let mut at = matches;
    while let Some((name, sub)) = at.subcommand() {
        path.push(name.to_owned());
        at = sub;
    }
    path
}

/// `error` as clap renders its own usage errors, with the usage line of the subcommand at `path`.
pub fn clap_error(error: &UsageError, path: &[String]) -> clap::Error {
    let mut command = crate::cli::Cli::command();
    // Built, each subcommand knows its full name ("devtrace token create") for the usage line.
    command.build();
    for name in path {
        match command.find_subcommand(name) {
            Some(sub) => command = sub.clone(),
            None => break,
        }
    }
    command.error(clap::error::ErrorKind::ValueValidation, &error.0)
}
