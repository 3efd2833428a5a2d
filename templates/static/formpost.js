// Sends the authorization response on to the application at once
// (response_mode=form_post). Without JavaScript the person presses the
// Continue button instead. A file of its own, not an inline script, so the
// Content-Security-Policy can forbid inline scripts.
(function () {
  var form = document.getElementById("form-post");
  if (form) { form.submit(); }
})();
