//! Parsing the small named choices of the command line and the settings (sampler, prior,
//! device, training stage, recipe), with one error wording for all of them.

/// The value whose names include `s` (case-insensitive). Each entry lists a value's names,
/// the one shown in errors first, then accepted aliases; `what` names the setting.
pub fn parse<T: Copy>(s: &str, what: &str, choices: &[(&[&str], T)]) -> Result<T, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(&(_, v)) = choices.iter().find(|(names, _)| names.contains(&lower.as_str())) {
        return Ok(v);
    }
    let shown: Vec<&str> = choices.iter().filter_map(|(names, _)| names.first().copied()).collect();
    let list = match shown.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.to_string(),
        None => String::new(),
    };
    Err(format!("unknown {what} '{s}' ({list})"))
}

#[cfg(test)]
mod tests {
    use super::parse;

    const DAYS: &[(&[&str], u8)] = &[(&["mon", "monday"], 1), (&["tue"], 2), (&["wed"], 3)];

    #[test]
    fn a_name_or_an_alias_in_any_case_parses() {
        assert_eq!(parse("Monday", "day", DAYS), Ok(1));
        assert_eq!(parse("TUE", "day", DAYS), Ok(2));
    }

    #[test]
    fn an_unknown_name_lists_the_shown_names() {
        assert_eq!(parse("fri", "day", DAYS), Err("unknown day 'fri' (mon, tue or wed)".to_string()));
    }
}
