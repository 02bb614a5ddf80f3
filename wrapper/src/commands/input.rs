//! Inputs that several commands gather the same way: a value from its flag or environment variable, else a
//! prompt, else its default; a secret prompt; a yes/no confirmation; and the one sentence for an invalid value.

use std::io::IsTerminal;

use cloudcode_bundle::validate;

use crate::error::{Error, Result};
use crate::i18n::tr;

/// The one sentence for a value the validation rules refused, naming the field (flag) it came from.
pub(crate) fn invalid(field_en: &str, field_zh: &str, e: validate::Invalid) -> Error {
    Error::Input(tr(
        format!("{field_en} {}", e.message()),
        format!("{field_zh}无效：{}", e.message()),
    ))
}

/// A value from flag/env, else a prompt on the terminal, else the default, else an error naming the flag.
pub(crate) fn value(
    given: Option<String>,
    yes: bool,
    prompt: (&str, &str),
    default: Option<&str>,
    flag: &str,
) -> Result<String> {
    if let Some(v) = given {
        return Ok(v);
    }
    if !yes && std::io::stdin().is_terminal() {
        let mut input = dialoguer::Input::<String>::new().with_prompt(tr(prompt.0, prompt.1));
        if let Some(d) = default {
            input = input.default(d.to_string()).allow_empty(true);
        }
        return input.interact_text().map_err(|_| Error::Cancelled);
    }
    default.map(str::to_string).ok_or_else(|| {
        Error::input(
            format!("{flag} is required"),
            format!("缺少必需参数 {flag}"),
        )
    })
}

pub(crate) fn secret(
    given: Option<String>,
    yes: bool,
    prompt: (&str, &str),
    confirm: bool,
) -> Result<Option<String>> {
    if given.is_some() || yes || !std::io::stdin().is_terminal() {
        return Ok(given);
    }
    let mut p = dialoguer::Password::new().with_prompt(tr(prompt.0, prompt.1));
    if confirm {
        p = p.with_confirmation(
            tr("Repeat it", "再输入一次"),
            tr("the two entries differ", "两次输入不一致"),
        );
    } else {
        p = p.allow_empty_password(true);
    }
    let v = p.interact().map_err(|_| Error::Cancelled)?;
    Ok((!v.is_empty()).then_some(v))
}

/// Asks a yes/no question on the terminal; without a terminal the answer is "no".
pub(crate) fn confirm(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    dialoguer::Confirm::new()
        .with_prompt(question)
        .default(false)
        .interact()
        .unwrap_or(false)
}

pub(crate) fn need_tty_hint() -> String {
    tr(
        " (no terminal to ask on: pass --yes)",
        "（没有可交互的终端：请使用 --yes）",
    )
}
