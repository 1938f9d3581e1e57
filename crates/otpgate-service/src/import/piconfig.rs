//! The settings of privacyIDEA's `pi.cfg` (a Python file) the import needs.

/// The settings of privacyIDEA's `pi.cfg` the import needs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PiConfig {
    /// `SQLALCHEMY_DATABASE_URI`.
    pub database_uri: Option<String>,
    /// `PI_ENCFILE`.
    pub encfile: Option<String>,
    /// `PI_PEPPER`.
    pub pepper: Option<String>,
}

impl std::fmt::Debug for PiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiConfig")
            .field("database_uri", &self.database_uri.as_ref().map(|_| "…"))
            .field("encfile", &self.encfile)
            .field("pepper", &self.pepper.as_ref().map(|_| "…"))
            .finish()
    }
}

impl PiConfig {
    /// Reads the plain assignments (`NAME = 'text'`) of a `pi.cfg` (a Python file); a
    /// needed setting that is not a plain string is an error naming it.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut c = PiConfig::default();
        for line in text.lines() {
            let line = line.trim();
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            let name = name.trim();
            let slot = match name {
                "SQLALCHEMY_DATABASE_URI" => &mut c.database_uri,
                "PI_ENCFILE" => &mut c.encfile,
                "PI_PEPPER" => &mut c.pepper,
                _ => continue,
            };
            *slot = Some(python_string(value.trim()).ok_or_else(|| {
                format!(
                    "{name} in pi.cfg is not a plain string; give the value on the command line"
                )
            })?);
        }
        Ok(c)
    }
}

/// A Python string literal ('…', "…", r'…'), a trailing comment allowed.
fn python_string(v: &str) -> Option<String> {
    let (raw, v) = match v.strip_prefix(['r', 'R']) {
        Some(rest) => (true, rest),
        None => (false, v),
    };
    let quote = v.chars().next().filter(|q| *q == '\'' || *q == '"')?;
    let body = v.get(1..)?;
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' if !raw => out.push(match chars.next()? {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                c @ ('\\' | '\'' | '"') => c,
                // \x, \u, octal and the rest: not read, rather than read wrongly.
                _ => return None,
            }),
            c if c == quote => {
                let tail = chars.as_str().trim();
                return (tail.is_empty() || tail.starts_with('#')).then_some(out);
            }
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pi_cfg_plain_strings_are_read() {
        let c = PiConfig::parse(
            "# comment\nimport os\nSQLALCHEMY_DATABASE_URI = 'mysql+pymysql://pi:p\\'w@db/pi'\n\
             PI_ENCFILE = \"/etc/privacyidea/enckey\"  # the keys\nPI_PEPPER = r'pe\\pper'\n\
             PI_LOGLEVEL = 20\n",
        )
        .unwrap();
        assert_eq!(
            c.database_uri.as_deref(),
            Some("mysql+pymysql://pi:p'w@db/pi")
        );
        assert_eq!(c.encfile.as_deref(), Some("/etc/privacyidea/enckey"));
        assert_eq!(c.pepper.as_deref(), Some("pe\\pper"));
        let e = PiConfig::parse("PI_ENCFILE = os.path.join(BASE, 'enckey')\n").unwrap_err();
        assert!(e.contains("PI_ENCFILE"), "{e}");
        assert_eq!(PiConfig::parse("").unwrap(), PiConfig::default());
        let c = PiConfig::parse("PI_PEPPER = 'a\\tb\\\\c'\n").unwrap();
        assert_eq!(c.pepper.as_deref(), Some("a\tb\\c"));
        assert!(
            PiConfig::parse("PI_PEPPER = 'a\\x41'\n").is_err(),
            "not read wrongly"
        );
        assert!(
            !format!("{c:?}").contains("a\tb"),
            "the pepper stays out of Debug"
        );
    }
}
