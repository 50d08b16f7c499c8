"""Allowlists for what a kept record may show: HTML fragments, SVG images, CSS.

Everything here keeps only what is listed and rebuilds its output (nh3 serializes
the HTML it parsed, ElementTree the SVG), so markup the sandbox wrote is never
passed through. Kept: text formatting, tables, images whose source is a
`data:image/...;base64` URL, and CSS that calls no function but colours, sizes,
transforms and `url(#local-id)`. Nothing that runs script or loads a URL.

Pure: no Dagster, no Docker, no files.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from html.parser import HTMLParser

import nh3

# --- HTML ---------------------------------------------------------------------------------

TAGS = {
    "p", "div", "span", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "b", "i", "strong", "em", "u", "s",
    "del", "ins", "sub", "sup", "small", "mark", "code", "pre", "kbd", "samp", "var", "blockquote", "q",
    "cite", "abbr", "dfn", "ul", "ol", "li", "dl", "dt", "dd", "table", "thead", "tbody", "tfoot", "tr", "th",
    "td", "caption", "colgroup", "col", "img", "figure", "figcaption", "details", "summary",
}
# Dropped with everything inside them: their content is code, a document of its own, or noise as text.
DROPPED_WITH_CONTENT = {
    "script", "style", "template", "svg", "math", "iframe", "object", "embed", "frame", "frameset", "applet",
    "noscript", "noembed", "noframes", "textarea", "title", "xmp", "select", "head",
}
ATTRIBUTES = {
    "*": {"title", "lang", "dir", "style", "align", "valign"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "table": {"border", "cellpadding", "cellspacing"},
    "ol": {"start", "type"},
    "li": {"value"},
    "col": {"span", "width"},
    "colgroup": {"span"},
    "details": {"open"},
}
CLASSES = {"table": {"dataframe"}}  # pandas' tables; no other class, so no page's CSS or script is triggered
# Properties that take no URL and cannot lift an element out of its cell (no position, no content).
STYLE_PROPERTIES = {
    "color", "background-color", "text-align", "vertical-align", "font-weight", "font-style", "font-size",
    "font-family", "text-decoration", "white-space", "word-break", "line-height", "text-indent", "opacity",
    "border", "border-top", "border-bottom", "border-left", "border-right", "border-color", "border-style",
    "border-width", "border-collapse", "border-spacing", "padding", "padding-top", "padding-bottom",
    "padding-left", "padding-right", "margin", "margin-top", "margin-bottom", "margin-left", "margin-right",
    "width", "height", "min-width", "max-width", "min-height", "max-height", "display",
}
DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif|webp|svg\+xml);base64,([A-Za-z0-9+/]*={0,2})")
_SIZE = re.compile(r"\d{1,5}(\.\d+)?%?")

# How the census names what the allowlist removes (for run.json); other tags are stripped silently.
ELEMENT_KINDS = {
    "script": "script", "iframe": "frame", "frame": "frame", "frameset": "frame", "object": "frame",
    "embed": "frame", "applet": "frame", "portal": "frame", "fencedframe": "frame", "base": "meta",
    "meta": "meta", "link": "meta", "style": "css", "svg": "svg", "math": "element", "form": "element",
    "input": "element", "button": "element", "template": "element",
}
URL_ATTRIBUTES = {
    "src", "href", "srcset", "action", "formaction", "poster", "background", "data", "xlink:href", "ping",
    "cite", "longdesc", "lowsrc", "dynsrc", "manifest", "codebase", "archive", "imagesrcset",
}


def data_image(value: str | None) -> str | None:
    """The URL with its whitespace removed, if it is a base64 `data:image/...` URL; else None."""
    compact = re.sub(r"\s+", "", value or "")
    return compact if DATA_IMAGE.fullmatch(compact) else None


def _attribute(tag: str, name: str, value: str) -> str | None:
    """Values of allowed attributes: images only from data: URLs, sizes as numbers, inert CSS."""
    if name == "src":
        return data_image(value)
    if name in ("width", "height"):
        return value if _SIZE.fullmatch(value.strip()) else None
    if name == "style":
        return value if css_is_inert(value) else None
    return value


_CLEANER = nh3.Cleaner(
    tags=TAGS,
    clean_content_tags=DROPPED_WITH_CONTENT,
    attributes=ATTRIBUTES,
    attribute_filter=_attribute,
    allowed_classes=CLASSES,
    filter_style_properties=STYLE_PROPERTIES,
    url_schemes={"data"},
    url_relative="deny",
    link_rel=None,
    strip_comments=True,
)


def clean_html(fragment: str, found: Counter[str]) -> str:
    """The fragment with only allowlisted tags, attributes and values; what it removes is counted in `found`."""
    count_unsafe(fragment, found)
    return _CLEANER.clean(fragment)


def count_unsafe(fragment: str, found: Counter[str]) -> None:
    """Count, by kind, the active parts of an HTML fragment: for the record's account, not for safety."""
    census = _Census(found)
    try:
        census.feed(fragment)
        census.close()
    except Exception:  # noqa: BLE001 - the count is informative; nh3 does the cleaning whatever happens here
        found["unparsed"] += 1


class _Census(HTMLParser):
    def __init__(self, found: Counter[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.found = found
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"  # counted by what it holds: pandas' plain table CSS is no threat
        if tag in ELEMENT_KINDS and tag != "style" and not (tag == "meta" and "http-equiv" not in dict(attrs)):
            self.found[ELEMENT_KINDS[tag]] += 1
        for name, value in attrs:
            if name.startswith("on"):
                self.found["event-handler"] += 1
            elif name in URL_ATTRIBUTES and not (tag == "img" and name == "src" and data_image(value)):
                self.found["url"] += 1
            elif name == "style" and not css_is_inert(value or ""):
                self.found["css"] += 1

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style and not css_is_inert(data):
            self.found["css"] += 1


# --- CSS ----------------------------------------------------------------------------------

_CSS_FUNCTION = re.compile(r"([a-z0-9_-]+)\s*\(")
_CSS_FUNCTIONS = {
    "rgb", "rgba", "hsl", "hsla", "calc", "var", "translate", "translatex", "translatey", "rotate", "scale",
    "scalex", "scaley", "matrix", "skewx", "skewy", "url",
    "nth-child", "nth-last-child", "nth-of-type", "nth-last-of-type", "not", "is", "where",  # selectors
}
_LOCAL_URL = re.compile(r"\s*#[\w.:-]*\s*\)")


def css_is_inert(css: str) -> bool:
    """True when the CSS can load nothing: no at-rules (@import, @font-face), no escapes that could
    spell a function's name, and no function but colours, sizes, transforms and `url(#local-id)`."""
    lowered = css.lower()
    if any(c in lowered for c in "\\@<"):
        return False
    for match in _CSS_FUNCTION.finditer(lowered):
        if match.group(1) not in _CSS_FUNCTIONS:
            return False
        if match.group(1) == "url" and not _LOCAL_URL.match(lowered, match.end()):
            return False
    return True


# --- SVG ----------------------------------------------------------------------------------

SVG_NS, XLINK_NS, XML_NS = "http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink", "http://www.w3.org/XML/1998/namespace"
SVG_ELEMENTS = {
    "svg", "g", "defs", "path", "rect", "circle", "ellipse", "line", "polyline", "polygon", "text", "tspan",
    "clipPath", "mask", "pattern", "linearGradient", "radialGradient", "stop", "symbol", "use", "marker",
    "title", "desc", "image", "style",
}
SVG_ATTRIBUTES = {
    "id", "class", "d", "x", "y", "x1", "x2", "y1", "y2", "cx", "cy", "r", "rx", "ry", "dx", "dy", "width",
    "height", "viewBox", "points", "transform", "fill", "fill-opacity", "fill-rule", "stroke", "stroke-width",
    "stroke-linecap", "stroke-linejoin", "stroke-miterlimit", "stroke-dasharray", "stroke-dashoffset",
    "stroke-opacity", "opacity", "clip-path", "clip-rule", "clipPathUnits", "mask", "maskUnits", "font-family",
    "font-size", "font-weight", "font-style", "text-anchor", "dominant-baseline", "alignment-baseline",
    "letter-spacing", "word-spacing", "text-decoration", "style", "version", "preserveAspectRatio",
    "gradientUnits", "gradientTransform", "offset", "stop-color", "stop-opacity", "patternUnits",
    "patternContentUnits", "patternTransform", "markerWidth", "markerHeight", "refX", "refY", "orient",
    "markerUnits", "rotate", "visibility", "display", "overflow", "href", "type", "media",
}
for _prefix, _uri in (("", SVG_NS), ("xlink", XLINK_NS)):
    ET.register_namespace(_prefix, _uri)


def clean_svg(svg: str, found: Counter[str]) -> str | None:
    """An SVG image rebuilt from allowlisted elements and attributes, or None when it is not one.
    References stay inside the image (`#id`); embedded images only as data: URLs."""
    if "<!ENTITY" in svg:  # entity expansion (billion laughs); a chart declares none
        found["svg"] += 1
        return None
    try:
        root = ET.fromstring(svg)
    except ET.ParseError:
        found["svg"] += 1
        return None
    if root.tag != f"{{{SVG_NS}}}svg":
        found["svg"] += 1
        return None
    _clean_svg_element(root, found)
    return ET.tostring(root, encoding="unicode")


def _svg_attribute_allowed(name: str) -> bool:
    if name.startswith("{"):  # ElementTree spells a namespaced attribute {uri}local
        return tuple(name[1:].split("}", 1)) in {(XLINK_NS, "href"), (XML_NS, "space")}
    return name in SVG_ATTRIBUTES


def _clean_svg_element(element: ET.Element, found: Counter[str]) -> None:
    for name, value in list(element.attrib.items()):
        local = name.rsplit("}", 1)[-1]
        keep = _svg_attribute_allowed(name)
        if local.lower().startswith("on"):
            found["event-handler"] += 1
        elif keep and local == "href" and not value.startswith("#"):
            image = data_image(value) if element.tag == f"{{{SVG_NS}}}image" else None
            if image is None:
                found["url"] += 1
                keep = False
            else:
                element.set(name, image)
        elif keep and ("url(" in value.lower() or local == "style") and not css_is_inert(value):
            found["css"] += 1
            keep = False
        if not keep:
            del element.attrib[name]
    for child in list(element):
        namespace, _, local = child.tag.rpartition("}")
        allowed = namespace == f"{{{SVG_NS}" and local in SVG_ELEMENTS
        if allowed and local == "style":  # a stylesheet is its whole text, children's included
            css, tail = "".join(child.itertext()), child.tail
            child.clear()
            child.text, child.tail = css, tail
            if not css_is_inert(css):
                found["css"] += 1
                allowed = False
        elif allowed and local == "image" and not data_image(child.get("href") or child.get(f"{{{XLINK_NS}}}href")):
            found["url"] += 1
            allowed = False
        elif not allowed:
            found["script" if local == "script" else "frame" if local == "foreignObject" else "svg"] += 1
        if allowed:
            _clean_svg_element(child, found)
        else:
            element.remove(child)


# --- the finished HTML document -----------------------------------------------------------

FORBIDDEN_IN_DOCUMENT = {"script", "iframe", "frame", "frameset", "object", "embed", "applet", "portal", "base", "link", "form", "svg", "math"}


def unsafe_parts(document: str) -> list[str]:
    """What in a rendered document could run script or load a URL (the template's own markup
    included); empty when nothing. A last check before the HTML is kept: it is kept only if empty."""
    check = _DocumentCheck()
    check.feed(document)
    check.close()
    return check.problems


class _DocumentCheck(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        values = dict(attrs)
        if tag in FORBIDDEN_IN_DOCUMENT:
            self.problems.append(f"<{tag}>")
        if tag == "meta" and (values.get("http-equiv") or "").lower() not in ("", "content-security-policy"):
            self.problems.append(f"<meta http-equiv={values.get('http-equiv')}>")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                self.problems.append(f"{tag} {name}=")
            elif name in URL_ATTRIBUTES and not (value.startswith("#") or data_image(value)):
                self.problems.append(f"{tag} {name}={value[:80]!r}")
            elif name == "style" and not css_is_inert(value):
                self.problems.append(f"{tag} style={value[:80]!r}")

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        # The template's own stylesheet: icons as data: URLs, no imports. Anything else would load.
        if self._in_style and ("@import" in data.lower() or re.search(r"url\(\s*['\"]?(?!data:|#)", data, re.I)):
            self.problems.append("a stylesheet that loads a URL")
