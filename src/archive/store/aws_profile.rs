//! The keys and region of an AWS profile (`AWS_PROFILE`, default `default`) from the shared
//! files the AWS tools write: `~/.aws/credentials` (`[name]`) and `~/.aws/config`
//! (`[profile name]`, or `[default]`), or the files `AWS_SHARED_CREDENTIALS_FILE` and
//! `AWS_CONFIG_FILE` name. Only static keys are read (`aws_access_key_id`,
//! `aws_secret_access_key`, `aws_session_token`, `region`, `endpoint_url`); single sign-on and
//! role chains are left to the environment or the instance role.

use std::path::PathBuf;

use object_store::aws::AmazonS3ConfigKey;

/// The settings of the selected profile, as S3 configuration (empty when there is none).
pub fn settings() -> Vec<(AmazonS3ConfigKey, String)> {
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let file = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
    };
    let mut out = Vec::new();
    let config_section = if profile == "default" {
        "default".to_owned()
    } else {
        format!("profile {profile}")
    };
    for (path, section) in [
        (
            file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
            profile.clone(),
        ),
        (file("AWS_CONFIG_FILE", "config"), config_section),
    ] {
        let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else {
            continue;
        };
        for (key, value) in section_of(&text, &section) {
            let key = match key.as_str() {
                "aws_access_key_id" => AmazonS3ConfigKey::AccessKeyId,
                "aws_secret_access_key" => AmazonS3ConfigKey::SecretAccessKey,
                "aws_session_token" => AmazonS3ConfigKey::Token,
                "region" => AmazonS3ConfigKey::Region,
                "endpoint_url" => AmazonS3ConfigKey::Endpoint,
                _ => continue,
            };
            // The environment wins over the files, as in the AWS tools.
            if !out.iter().any(|(k, _)| *k == key) {
                out.push((key, value));
            }
        }
    }
    out
}

/// The `key = value` lines of `[section]` in an INI text.
fn section_of(text: &str, section: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            continue;
        }
        if inside && let Some((key, value)) = line.split_once('=') {
            out.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_section_is_read() {
        let text = "[default]\naws_access_key_id = A\n# c\n[profile ci]\nregion=eu-west-1\n\
                    aws_access_key_id=B\n[other]\nregion=x\n";
        assert_eq!(
            section_of(text, "profile ci"),
            vec![
                ("region".into(), "eu-west-1".into()),
                ("aws_access_key_id".into(), "B".into())
            ]
        );
        assert_eq!(
            section_of(text, "default"),
            vec![("aws_access_key_id".into(), "A".into())]
        );
        assert!(section_of(text, "missing").is_empty());
    }
}
