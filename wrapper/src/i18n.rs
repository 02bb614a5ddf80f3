//! Message language: Chinese when `LANG` (or `LC_ALL`/`LC_MESSAGES`) starts with `zh_`, English otherwise.
//! Every user-facing sentence goes through [`tr`] with both texts side by side.

/// True when messages should be in Chinese.
pub fn chinese() -> bool {
    ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .is_some_and(|v| v.starts_with("zh_") || v == "zh")
}

/// Picks the English or the Chinese text.
pub fn tr(en: impl Into<String>, zh: impl Into<String>) -> String {
    if chinese() {
        zh.into()
    } else {
        en.into()
    }
}
