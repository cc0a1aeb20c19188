//! The names a BEAM function's spans carry, made from the module, function and arity the VM or
//! a probe reports: Elixir's `Cart.Server.handle_call/3`, Erlang's `cart:start/0`; a function
//! the compiler made of an anonymous one named after the function it is written in. Made by the
//! tracer NIF; read back by whoever must tell which function a span is ([`enclosing_function`]).

use crate::names::CodeInfo;

/// A function's names: Elixir's `Cart.Server` + `handle_call/3`, Erlang's `cart:start/0` whole.
/// A function the compiler made of an anonymous one (`-add/2-fun-0-`) is named without its
/// arity, which counts the variables it closes over when traced and not when probed:
/// Elixir's `anonymous fn#0 in Cart.add/2`, Erlang's `cart:-add/2-fun-0-`.
pub fn code_info(module: &str, function: &str, arity: u32) -> CodeInfo {
    if let Some(info) = script_code_info(module, function) {
        return info;
    }
    let fun = anonymous_fun(function);
    let alias = module.strip_prefix("Elixir.");
    let qualname = match (alias, fun) {
        (Some(alias), Some((outer, index))) => format!("anonymous fn#{index} in {alias}.{outer}"),
        (Some(_), None) => format!("{function}/{arity}"),
        (None, Some(_)) => format!("{module}:{function}"),
        (None, None) => format!("{module}:{function}/{arity}"),
    };
    CodeInfo {
        qualname,
        module: alias
            .filter(|_| fun.is_none())
            .unwrap_or_default()
            .to_owned(),
        file: String::new(),
        line: 0,
    }
}

/// An Elixir script's top level (`elixir script.exs`), which Elixir compiles into a module of
/// its own, `elixir_compiler_N`, run as its function `__FILE__/1`: named as what it is, `the
/// script's top level`, and its anonymous functions `anonymous fn#1 in the script`, rather
/// than by the compiler's names, which mean nothing to the script's author.
fn script_code_info(module: &str, function: &str) -> Option<CodeInfo> {
    let n = module.strip_prefix("elixir_compiler_")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let qualname = match anonymous_fun(function) {
        Some(("__FILE__/1", index)) => format!("anonymous fn#{index} in the script"),
        None if function == "__FILE__" => "the script's top level".to_owned(),
        _ => return None,
    };
    Some(CodeInfo {
        qualname,
        module: String::new(),
        file: String::new(),
        line: 0,
    })
}

/// The module a function belongs to, however [`code_info`] named it: `Cart.Server` for
/// `Cart.Server.add/2` and `anonymous fn#0 in Cart.Server.add/2`, `cart` for `cart:add/2`,
/// `cart:-add/2-fun-0-` and a comprehension's `cart:-add/2-lc$^0/1-0-/1` (an Erlang function's
/// `module` field is empty: its name is whole in `qualname`).
pub fn module_of(code: &CodeInfo) -> Option<&str> {
    if !code.module.is_empty() {
        return Some(&code.module);
    }
    if let Some(rest) = code.qualname.strip_prefix("anonymous fn#") {
        let (_, outer) = rest.split_once(" in ")?;
        let function = outer.rsplit_once('/').map_or(outer, |(f, _)| f);
        return function.rsplit_once('.').map(|(module, _)| module);
    }
    let (module, _) = code.qualname.split_once(':')?;
    (!module.is_empty()).then_some(module)
}

/// Whether the compiler made the function rather than its author writing it: an anonymous
/// function's (`-add/2-fun-0-`), a comprehension's (`-main/1-lc$^1/1-0-`), an inlined one's
/// (`-inlined-__info__/1-`) — every such name begins with `-`. None stands for a function of a
/// module's API.
pub fn compiler_made(code: &CodeInfo) -> bool {
    let function = match code.module.is_empty() {
        true => code
            .qualname
            .split_once(':')
            .map_or(code.qualname.as_str(), |(_, f)| f),
        false => &code.qualname,
    };
    function.starts_with('-') || code.qualname.starts_with("anonymous fn#")
}

/// The function an anonymous function's span is named after: `Basket.total/1` for
/// `anonymous fn#1 in Basket.total/1`, `basket:total/1` for `basket:-total/1-fun-1-` (or a
/// named fun's `basket:-total/1-Loop/1-0-`); none for any other span name.
pub fn enclosing_function(span_name: &str) -> Option<String> {
    if let Some(rest) = span_name.strip_prefix("anonymous fn#") {
        let (index, outer) = rest.split_once(" in ")?;
        return index
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| outer.to_owned());
    }
    let (module, _) = span_name.rsplit_once(":-")?;
    let (outer, _) = anonymous_fun(&span_name[module.len() + 1..])?;
    Some(format!("{module}:{outer}"))
}

/// The function a list comprehension's loop is written in: `kv:main/1` for
/// `kv:-main/1-lc$^1/1-0-/1` (a binary comprehension's `blc$^`, a map comprehension's `mc$^`
/// too: Erlang's; Elixir's `for` runs an anonymous function); none for any other span name.
pub fn comprehension_in(span_name: &str) -> Option<String> {
    let (module, rest) = span_name.split_once(":-")?;
    let outer = ["-lc$^", "-blc$^", "-mc$^"]
        .iter()
        .find_map(|loop_| rest.split_once(loop_).map(|(outer, _)| outer))?;
    let arity = outer.rsplit_once('/')?.1;
    (!arity.is_empty() && arity.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{module}:{outer}"))
}

/// The function holding an anonymous function and the fun's number in it, from the name the
/// compiler gives the fun (`-add/2-fun-0-`: `("add/2", "0")`; a named fun's `-g/0-Loop/1-0-`:
/// `("g/0", "Loop/1-0")`). Other names the compiler makes are none: a comprehension's
/// (`-f/1-lc$^0/1-0-`), an inlined function's (`-inlined-__info__/1-`).
fn anonymous_fun(function: &str) -> Option<(&str, &str)> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let function_with_arity = |s: &str| s.rsplit_once('/').is_some_and(|(_, a)| digits(a));
    let inner = function.strip_prefix('-')?.strip_suffix('-')?;
    if let Some((outer, index)) = inner.rsplit_once("-fun-") {
        return (function_with_arity(outer) && digits(index)).then_some((outer, index));
    }
    // A named fun's: `g/0-Loop/1-0`, its name a variable's (no `$^`, no `-`).
    let (rest, index) = inner.rsplit_once('-')?;
    let (outer, named) = rest.rsplit_once('-')?;
    let plain =
        named.starts_with(|c: char| c.is_ascii_uppercase() || c == '_') && !named.contains("$^");
    (digits(index) && plain && function_with_arity(named) && function_with_arity(outer))
        .then_some((outer, &inner[outer.len() + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span_name(module: &str, function: &str, arity: u32) -> String {
        code_info(module, function, arity).span_name()
    }

    #[test]
    fn a_functions_module_is_read_from_either_languages_names() {
        let module = |m: &str, f: &str, a: u32| module_of(&code_info(m, f, a)).map(str::to_owned);
        assert_eq!(
            module("Elixir.Cart.Server", "add", 2).as_deref(),
            Some("Cart.Server")
        );
        assert_eq!(
            module("Elixir.Cart.Server", "-add/2-fun-0-", 1).as_deref(),
            Some("Cart.Server")
        );
        assert_eq!(module("cart", "add", 2).as_deref(), Some("cart"));
        assert_eq!(module("cart", "-add/2-fun-0-", 1).as_deref(), Some("cart"));
        assert_eq!(
            module("cart", "-add/2-lc$^0/1-0-", 1).as_deref(),
            Some("cart")
        );
        assert_ne!(
            module("kv", "get", 1),
            module("report", "-totals/1-fun-0-", 2)
        );
    }

    #[test]
    fn a_scripts_top_level_is_named_as_what_it_is() {
        assert_eq!(
            span_name("elixir_compiler_0", "__FILE__", 1),
            "the script's top level"
        );
        assert_eq!(
            span_name("elixir_compiler_12", "-__FILE__/1-fun-1-", 1),
            "anonymous fn#1 in the script"
        );
        // Another function of a module so named is left as the VM names it.
        assert_eq!(
            span_name("elixir_compiler_0", "other", 0),
            "elixir_compiler_0:other/0"
        );
    }

    #[test]
    fn functions_are_named_as_each_language_writes_them() {
        assert_eq!(
            span_name("Elixir.Cart.Server", "handle_call", 3),
            "Cart.Server.handle_call/3"
        );
        assert_eq!(span_name("cart", "start", 0), "cart:start/0");
    }

    #[test]
    fn an_anonymous_function_is_named_after_the_function_it_is_in_without_its_arity() {
        // Traced, the arity counts the variables the fun closes over; probed, not.
        for arity in [1, 3] {
            assert_eq!(
                span_name("Elixir.Cart", "-add/2-fun-0-", arity),
                "anonymous fn#0 in Cart.add/2"
            );
            assert_eq!(
                span_name("cart", "-add/2-fun-12-", arity),
                "cart:-add/2-fun-12-"
            );
            assert_eq!(
                span_name("cart", "-g/0-Loop/1-0-", arity),
                "cart:-g/0-Loop/1-0-"
            );
        }
        // An ExUnit test's function, its name a sentence.
        assert_eq!(
            span_name("Elixir.CartTest", "-test a my-fun-1 case/1-fun-3-", 1),
            "anonymous fn#3 in CartTest.test a my-fun-1 case/1"
        );
    }

    #[test]
    fn a_comprehension_is_named_by_the_function_it_is_written_in() {
        let written_in = |m: &str, f: &str| comprehension_in(&span_name(m, f, 1));
        assert_eq!(
            written_in("kv", "-main/1-lc$^1/1-0-").as_deref(),
            Some("kv:main/1")
        );
        assert_eq!(
            written_in("kv", "-pack/2-blc$^0/1-0-").as_deref(),
            Some("kv:pack/2")
        );
        assert_eq!(written_in("kv", "-main/1-fun-0-"), None);
        assert_eq!(written_in("kv", "main"), None);
        assert_eq!(written_in("Elixir.Cart", "add"), None);
    }

    #[test]
    fn the_compilers_functions_are_told_from_the_authors() {
        let made = |m: &str, f: &str| compiler_made(&code_info(m, f, 1));
        assert!(made("kv", "-main/1-lc$^1/1-0-"));
        assert!(made("kv", "-main/1-fun-0-"));
        assert!(made("Elixir.Cart", "-add/2-fun-0-"));
        assert!(made("Elixir.Cart", "-inlined-__info__/1-"));
        assert!(made("elixir_compiler_3", "-__FILE__/1-fun-1-"));
        assert!(!made("kv", "put_key"));
        assert!(!made("Elixir.Cart", "add"));
        assert!(!made("Elixir.Cart", "a-b"));
        assert!(!made("elixir_compiler_3", "__FILE__"));
    }

    #[test]
    fn the_compilers_other_functions_keep_their_names_and_arity() {
        assert_eq!(
            span_name("cart", "-f/1-lc$^0/1-0-", 1),
            "cart:-f/1-lc$^0/1-0-/1"
        );
        assert_eq!(
            span_name("Elixir.Cart", "-inlined-__info__/1-", 1),
            "Cart.-inlined-__info__/1-/1"
        );
        assert_eq!(span_name("cart", "-weird-", 0), "cart:-weird-/0");
        assert_eq!(anonymous_fun("-f/1-Loop/x-0-"), None);
    }

    #[test]
    fn an_anonymous_functions_span_names_the_function_it_is_written_in() {
        for (module, function) in [
            ("Elixir.Basket", "-total/1-fun-1-"),
            ("basket", "-total/1-fun-12-"),
            ("basket", "-g/0-Loop/1-0-"),
            ("Elixir.CartTest", "-test a my-fun-1 case/1-fun-3-"),
        ] {
            let name = span_name(module, function, 2);
            let outer = enclosing_function(&name).unwrap_or_else(|| panic!("{name}"));
            let expected = match module.strip_prefix("Elixir.") {
                Some(alias) => format!("{alias}.{}", anonymous_fun(function).unwrap().0),
                None => format!("{module}:{}", anonymous_fun(function).unwrap().0),
            };
            assert_eq!(outer, expected, "{name}");
        }
        assert_eq!(
            enclosing_function("anonymous fn#1 in Basket.total/1").as_deref(),
            Some("Basket.total/1")
        );
        for other in [
            "Basket.total/1",
            "cart:-f/1-lc$^0/1-0-/1",
            "anonymous fn#x in Basket.total/1",
            "process <0.9.0>",
        ] {
            assert_eq!(enclosing_function(other), None, "{other}");
        }
    }
}
