// A one-time login link (taskrail demo prints it) carries its secret in the fragment, which is never sent
// to the server and so never logged: take it out of the address bar and post it with the form's CSRF token.
(function () {
  "use strict";
  const match = /^#once=([A-Za-z0-9_-]+)$/.exec(window.location.hash);
  if (!match) {
    return;
  }
  history.replaceState(null, "", window.location.pathname + window.location.search);
  const form = document.getElementById("once-form");
  form.elements.namedItem("once").value = match[1];
  form.submit();
})();
