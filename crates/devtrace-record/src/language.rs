//! A file's language from its name, for `file_opened` and `edit` events (the editor's own
//! file type wins when the editor sends one).

/// The language of a path by its extension or well-known name; empty when unknown.
pub fn of_path(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name {
        "Makefile" | "GNUmakefile" | "makefile" => return "make",
        "Dockerfile" | "Containerfile" => return "dockerfile",
        "CMakeLists.txt" => return "cmake",
        "Cargo.lock" | "poetry.lock" => return "toml",
        _ => {}
    }
    let Some((_, extension)) = name.rsplit_once('.') else {
        return "";
    };
    match extension.to_ascii_lowercase().as_str() {
        "rs" => "rust",
        "py" | "pyi" => "python",
        "go" => "go",
        "js" | "mjs" | "cjs" => "javascript",
        "jsx" => "javascriptreact",
        "ts" | "mts" | "cts" => "typescript",
        "tsx" => "typescriptreact",
        "java" => "java",
        "kt" | "kts" => "kotlin",
        "c" | "h" => "c",
        "cc" | "cpp" | "cxx" | "hpp" | "hh" | "hxx" => "cpp",
        "cs" => "csharp",
        "rb" => "ruby",
        "php" => "php",
        "swift" => "swift",
        "scala" => "scala",
        "lua" => "lua",
        "sh" | "bash" | "zsh" => "shellscript",
        "fish" => "fish",
        "sql" => "sql",
        "html" | "htm" => "html",
        "css" => "css",
        "scss" => "scss",
        "json" => "json",
        "yaml" | "yml" => "yaml",
        "toml" => "toml",
        "md" | "markdown" => "markdown",
        "rst" => "restructuredtext",
        "txt" => "plaintext",
        "xml" => "xml",
        "proto" => "proto",
        "ex" | "exs" => "elixir",
        "erl" => "erlang",
        "hs" => "haskell",
        "ml" | "mli" => "ocaml",
        "zig" => "zig",
        "dart" => "dart",
        "r" => "r",
        "jl" => "julia",
        "vue" => "vue",
        "svelte" => "svelte",
        "tf" => "terraform",
        "nix" => "nix",
        "vim" => "vim",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn languages_by_extension_and_name() {
        assert_eq!(super::of_path("src/app.py"), "python");
        assert_eq!(super::of_path("crates/x/src/lib.rs"), "rust");
        assert_eq!(super::of_path("web/App.TSX"), "typescriptreact");
        assert_eq!(super::of_path("Makefile"), "make");
        assert_eq!(super::of_path("LICENSE"), "");
        assert_eq!(super::of_path("archive.tar.gz"), "");
    }
}
