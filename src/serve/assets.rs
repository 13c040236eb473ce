//! What the page is made of, embedded in the binary: the HTML, script and style sheet
//! (no CDN, no build step), and the bundled example emoji (held-out validation images;
//! licences in assets/examples/README.md). Nothing is read from the file system at
//! request time.

pub const INDEX_HTML: &str = include_str!("page/index.html");
pub const APP_JS: &str = include_str!("page/app.js");
pub const APP_CSS: &str = include_str!("page/app.css");

/// A bundled example image.
pub struct Example {
    /// Its domain (vendor style).
    pub domain: &'static str,
    /// Code point(s) of the emoji.
    pub code: &'static str,
    pub name: &'static str,
    pub png: &'static [u8],
}

macro_rules! example {
    ($domain:literal, $code:literal, $name:literal) => {
        Example {
            domain: $domain,
            code: $code,
            name: $name,
            png: include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/assets/examples/emoji/",
                $domain,
                "/",
                $code,
                ".png"
            )),
        }
    };
}

pub const EXAMPLES: &[Example] = &[
    example!("fluent3d", "1f601", "grinning face"),
    example!("fluent3d", "1f92a", "zany face"),
    example!("fluent3d", "1f916", "robot"),
    example!("fluent3d", "1f980", "crab"),
    example!("fluent3d", "1f339", "rose"),
    example!("fluent3d", "1f370", "shortcake"),
    example!("fluent3d", "1f4a1", "light bulb"),
    example!("fluent3d", "2708", "airplane"),
    example!("noto", "1f601", "grinning face"),
    example!("noto", "1f92a", "zany face"),
    example!("noto", "1f916", "robot"),
    example!("noto", "1f980", "crab"),
    example!("noto", "1f339", "rose"),
    example!("noto", "1f370", "shortcake"),
    example!("noto", "1f4a1", "light bulb"),
    example!("noto", "2708", "airplane"),
    example!("openmoji", "1f601", "grinning face"),
    example!("openmoji", "1f92a", "zany face"),
    example!("openmoji", "1f916", "robot"),
    example!("openmoji", "1f980", "crab"),
    example!("openmoji", "1f339", "rose"),
    example!("openmoji", "1f370", "shortcake"),
    example!("openmoji", "1f4a1", "light bulb"),
    example!("openmoji", "2708", "airplane"),
    example!("twemoji", "1f601", "grinning face"),
    example!("twemoji", "1f92a", "zany face"),
    example!("twemoji", "1f916", "robot"),
    example!("twemoji", "1f980", "crab"),
    example!("twemoji", "1f339", "rose"),
    example!("twemoji", "1f370", "shortcake"),
    example!("twemoji", "1f4a1", "light bulb"),
    example!("twemoji", "2708", "airplane"),
];
