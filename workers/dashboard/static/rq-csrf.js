/* Added to rq-dashboard's pages by taskrail: its requeue, delete and empty buttons post with jQuery,
 * so every jQuery request now carries the session's CSRF token from the page's meta tag. */
(function () {
  "use strict";
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta && window.jQuery) {
    window.jQuery.ajaxSetup({ headers: { "X-CSRF-Token": meta.getAttribute("content") } });
  }
})();
