//! Compiling grammars: every pattern alone (to resolve its captures), and the patterns of each
//! app group into one multi-pattern regex, with a first-byte table when all are anchored.

use std::borrow::Cow;

use hashbrown::HashMap;

use super::grammar::{self, GrammarSpec, capture_map, parse_grammar};
use super::{
    AppGroup, Classifier, GrammarError, InjectionDetector, PatternId, PatternInfo, TrustedProxies,
};

impl Classifier {
    pub(super) fn compile(files: &[(String, Cow<'_, str>)]) -> Result<Classifier, GrammarError> {
        let mut specs: Vec<(&str, GrammarSpec)> = Vec::with_capacity(files.len());
        for (path, text) in files {
            specs.push((path, parse_grammar(path, text)?));
        }

        // Global ids in file order; remember which ids each file owns.
        let mut patterns = Vec::new();
        let mut regexes: Vec<String> = Vec::new();
        let mut file_ids: Vec<Vec<PatternId>> = Vec::with_capacity(specs.len());
        for (path, spec) in &specs {
            let mut ids = Vec::with_capacity(spec.patterns.len());
            for p in &spec.patterns {
                ids.push(patterns.len());
                let regex =
                    grammar::build_regex(&[p.regex.as_str()]).map_err(|e| GrammarError {
                        path: path.to_string(),
                        line: 0,
                        column: 0,
                        message: format!("pattern {}: {e}", p.full_name),
                    })?;
                let onepass = grammar::build_onepass(&p.regex);
                let required = if onepass.is_some() {
                    Vec::new()
                } else {
                    grammar::required_literals(&p.regex)
                        .iter()
                        .map(|l| memchr::memmem::Finder::new(l).into_owned())
                        .collect()
                };
                patterns.push(PatternInfo {
                    full_name: p.full_name.clone(),
                    kind: p.kind,
                    reason: p.reason.as_deref().map(std::sync::Arc::from),
                    attempt: p.attempt,
                    user: p.user.clone(),
                    pinned_address: p.pinned_address,
                    captures: capture_map(regex.group_info(), 0),
                    onepass,
                    required,
                    slot_len: regex.group_info().slot_len(),
                    regex,
                });
                regexes.push(p.regex.clone());
            }
            file_ids.push(ids);
        }

        let is_wildcard = |spec: &GrammarSpec| spec.apps.iter().any(|a| a == "*");
        let wildcard_ids: Vec<PatternId> = specs
            .iter()
            .zip(&file_ids)
            .filter(|((_, spec), _)| is_wildcard(spec))
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect();

        // App name → its pattern ids: its own files first, then the wildcard ones.
        let mut app_ids: Vec<(String, Vec<PatternId>)> = Vec::new();
        for ((_, spec), ids) in specs.iter().zip(&file_ids) {
            for app in spec.apps.iter().filter(|a| *a != "*") {
                match app_ids.iter_mut().find(|(a, _)| a == app) {
                    Some((_, list)) => list.extend(ids),
                    None => app_ids.push((app.clone(), ids.clone())),
                }
            }
        }

        // Apps with the same pattern list share one compiled regex.
        let mut groups: Vec<AppGroup> = Vec::new();
        let mut group_of_list: HashMap<Vec<PatternId>, usize> = HashMap::new();
        let mut group_for =
            |ids: Vec<PatternId>, groups: &mut Vec<AppGroup>| -> Result<usize, GrammarError> {
                if let Some(&g) = group_of_list.get(&ids) {
                    return Ok(g);
                }
                let group = compile_group(&ids, &regexes)?;
                groups.push(group);
                group_of_list.insert(ids, groups.len() - 1);
                Ok(groups.len() - 1)
            };
        let mut by_app = HashMap::with_hasher(foldhash::fast::FixedState::default());
        for (app, mut ids) in app_ids {
            ids.extend(
                wildcard_ids
                    .iter()
                    .filter(|id| !ids.contains(id))
                    .collect::<Vec<_>>(),
            );
            let g = group_for(ids, &mut groups)?;
            by_app.insert(app.into_boxed_str(), g);
        }
        let any_app = if wildcard_ids.is_empty() {
            None
        } else {
            Some(group_for(wildcard_ids, &mut groups)?)
        };

        Ok(Classifier {
            patterns,
            groups,
            by_app,
            any_app,
            injection: InjectionDetector::new(),
            proxies: TrustedProxies::default(),
        })
    }
}

fn compile_group(ids: &[PatternId], regexes: &[String]) -> Result<AppGroup, GrammarError> {
    let texts: Vec<&str> = ids
        .iter()
        .filter_map(|&id| regexes.get(id).map(String::as_str))
        .collect();
    // Each regex compiled alone while loading; a failure here is a limit of the combination
    // (e.g. its size), which no single file position explains.
    let regex = grammar::build_regex(&texts).map_err(|e| GrammarError {
        path: "grammars".into(),
        line: 0,
        column: 0,
        message: format!("the patterns of one app group do not compile together: {e}"),
    })?;
    let first_bytes: Option<Vec<[bool; 256]>> =
        texts.iter().map(|t| grammar::first_bytes(t)).collect();
    let by_first_byte = first_bytes.map(|sets| {
        (0..256)
            .map(|byte| {
                sets.iter()
                    .enumerate()
                    .filter(|(_, set)| set[byte])
                    .map(|(local, _)| local)
                    .collect()
            })
            .collect()
    });
    Ok(AppGroup {
        regex,
        ids: ids.to_vec(),
        by_first_byte,
    })
}
