//! The one trust rule for URLs a BMC hands out: they must stay on the BMC's own origin.

use url::Url;

use super::error::{clip, RedfishError};

/// Resolves a reference a BMC supplied (`@odata.id`, `Location`, a task monitor, a next link)
/// against the BMC's `base` URL and returns it only when the *resolved* URL has the BMC's
/// scheme, host and port and carries no user info.
///
/// Refused before resolving: backslashes, control characters and whitespace anywhere (the URL
/// parser drops or rewrites them, so `/\\host/` or `/<TAB>/host/` would turn into a
/// network-path reference to another host), and scheme-relative references (`//host/...`).
/// A fragment (`...#/Controllers/0`) is dropped: the document is the resource.
pub fn same_origin_ref(base: &Url, reference: &str) -> Result<Url, RedfishError> {
    let refused = || RedfishError::ForeignUrl(clip(reference, 120));
    if reference.is_empty()
        || reference
            .chars()
            .any(|c| c == '\\' || c.is_control() || c.is_whitespace())
        || reference.starts_with("//")
    {
        return Err(refused());
    }
    // An absolute path resolves against the base; anything else must be an absolute URL (a
    // relative path such as `redfish/v1` is no reference a BMC gives).
    let mut url = if reference.starts_with('/') {
        base.join(reference)
    } else {
        Url::parse(reference)
    }
    .map_err(|_| refused())?;
    let same_origin = url.scheme() == base.scheme()
        && url.host() == base.host()
        && url.port_or_known_default() == base.port_or_known_default()
        && url.username().is_empty()
        && url.password().is_none();
    if !same_origin {
        return Err(refused());
    }
    url.set_fragment(None);
    Ok(url)
}
