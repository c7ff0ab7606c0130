// Renders /api/openapi.json as a browsable list of operations. No inline code or styles, so the
// page runs under the same strict Content-Security-Policy as the rest of IMS.
"use strict";

function el(tag, text, children) {
  const node = document.createElement(tag);
  if (text) node.textContent = text;
  (children || []).forEach((c) => node.appendChild(c));
  return node;
}

function schemaName(ref) {
  return ref ? ref.split("/").pop() : "";
}

function describeContent(content) {
  if (!content) return "";
  const media = Object.keys(content)[0];
  const schema = content[media].schema || {};
  return media + (schema.$ref ? " — " + schemaName(schema.$ref) : "");
}

function render(doc) {
  const main = document.getElementById("docs");
  main.replaceChildren(el("h1", doc.info.title + " " + doc.info.version), el("p", doc.info.description || ""));
  const byTag = {};
  Object.entries(doc.paths).forEach(([path, ops]) => {
    Object.entries(ops).forEach(([method, op]) => {
      const tag = (op.tags && op.tags[0]) || "other";
      (byTag[tag] = byTag[tag] || []).push({ path, method, op });
    });
  });
  Object.keys(byTag).sort().forEach((tag) => {
    const section = el("section", null, [el("h2", tag)]);
    byTag[tag].forEach(({ path, method, op }) => {
      const details = el("details");
      details.appendChild(el("summary", method.toUpperCase() + " " + path + " — " + (op.summary || "")));
      const secured = (op.security || []).some((s) => Object.keys(s).length > 0);
      details.appendChild(el("p", secured ? "Requires a bearer access token." : "No authentication."));
      if (op.requestBody) details.appendChild(el("p", "Body: " + describeContent(op.requestBody.content)));
      const list = el("ul");
      Object.entries(op.responses || {}).forEach(([status, r]) => {
        list.appendChild(el("li", status + " " + (r.description || "") + " " + describeContent(r.content)));
      });
      details.appendChild(list);
      section.appendChild(details);
    });
    main.appendChild(section);
  });
  const schemas = (doc.components && doc.components.schemas) || {};
  const s = el("section", null, [el("h2", "Schemas")]);
  Object.entries(schemas).forEach(([name, schema]) => {
    const d = el("details", null, [el("summary", name)]);
    d.appendChild(el("pre", JSON.stringify(schema, null, 2)));
    s.appendChild(d);
  });
  main.appendChild(s);
}

fetch("/api/openapi.json")
  .then((r) => r.json())
  .then(render)
  .catch(() => {
    document.getElementById("docs").appendChild(el("p", "Could not load the API description."));
  });
