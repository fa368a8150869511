"""The reference page's own files: its HTML template, the script that starts Swagger UI and a
few styles. Kept as Python text so they install with the package like any module (no package
data to declare); learnplat.http.reference serves them beside Swagger UI's files."""

from __future__ import annotations

from string import Template

# $assets: the versioned asset folder, relative to /docs ("docs/assets/<digest>"), so that the
# page works on any host and under a path prefix. No inline script or style: the page's
# Content-Security-Policy allows only this origin's files.
PAGE = Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title API reference</title>
<link rel="icon" type="image/png" sizes="32x32" href="$assets/favicon-32x32.png">
<link rel="icon" type="image/png" sizes="16x16" href="$assets/favicon-16x16.png">
<link rel="stylesheet" href="$assets/swagger-ui.css">
<link rel="stylesheet" href="$assets/reference.css">
</head>
<body>
<header class="lp-bar">
<strong>$title API $version</strong>
<nav><a href="#operations">Operations</a> <a href="#problem-types">Problem types</a>
<a href="openapi.json">openapi.json</a></nav>
</header>
<noscript><p class="lp-note">The operations are shown with JavaScript; without it, read the
OpenAPI document itself: <a href="openapi.json">openapi.json</a>.</p></noscript>
<main>
<section id="operations" aria-label="Operations">
<div id="swagger-ui" data-url="openapi.json"></div>
</section>
<section id="problem-types" class="lp-problems">
<h2>Problem types</h2>
<p>Every error answer is <code>application/problem+json</code> (RFC 9457) with
<code>type</code>, <code>title</code>, <code>status</code>, <code>detail</code>,
<code>code</code> and <code>request_id</code>; invalid input (422) adds <code>errors</code>, one
entry per bad field. The <code>type</code> is <code>urn:learnplat:problem:&lt;code&gt;</code>;
each code is explained here, at <code>/docs#problem-&lt;code&gt;</code>. Branch on
<code>code</code> (stable), show <code>detail</code> (for people), quote
<code>request_id</code> when reporting a problem.</p>
<table>
<thead><tr><th>code (type)</th><th>status</th><th>title</th><th>meaning</th>
<th>from</th></tr></thead>
<tbody>
$problems
</tbody>
</table>
</section>
</main>
<script src="$assets/swagger-ui-bundle.js"></script>
<script src="$assets/reference.js"></script>
</body>
</html>
""")

PROBLEM_ROW = Template("""<tr id="problem-$code"><td><a href="#problem-$code"><code>$code</code></a>
<br><small><code>urn:learnplat:problem:$code</code></small></td><td>$statuses</td>
<td>$title</td><td>$explanation</td><td>$declared_by</td></tr>""")

SCRIPT = """\
// Starts Swagger UI on learnplat's reference page (/docs). A file of its own: the page's
// Content-Security-Policy allows no inline script.
"use strict";
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  function showAnchor() {
    // A link to a problem type (/docs#problem-email_taken): Swagger UI renders above the
    // catalogue after the page has loaded and scrolled, so scroll to it again.
    var id = decodeURIComponent(window.location.hash.slice(1));
    var target = id.indexOf("problem-") === 0 ? document.getElementById(id) : null;
    if (target) { target.scrollIntoView(); }
  }
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-url"),
    domNode: root,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    docExpansion: "list",
    tagsSorter: "alpha",
    defaultModelsExpandDepth: 0,
    displayRequestDuration: true,
    filter: true,
    showExtensions: true,
    // Never send the document to validator.swagger.io (another host).
    validatorUrl: null,
    onComplete: function () {
      document.body.setAttribute("data-reference-ready", "true");
      showAnchor();
    }
  });
  window.addEventListener("hashchange", showAnchor);
});
"""

STYLES = """\
/* learnplat's reference page, beside swagger-ui.css. */
body { margin: 0; font-family: sans-serif; color: #3b4151; }
.lp-bar { display: flex; justify-content: space-between; align-items: center;
  padding: 10px 20px; background: #1b1b1b; color: #fff; }
.lp-bar a { color: #fff; margin-left: 16px; }
.lp-note { margin: 20px; }
.lp-problems { max-width: 1460px; margin: 0 auto; padding: 0 20px 40px; }
.lp-problems table { border-collapse: collapse; width: 100%; font-size: 14px; }
.lp-problems th, .lp-problems td { border-bottom: 1px solid #ddd; padding: 6px 8px;
  text-align: left; vertical-align: top; }
.lp-problems tr:target { background: #fff6d6; }
.lp-problems code { font-size: 13px; }
"""
