// Cancel on the sign-out page: when the browser came here from another
// page, go back to it, exactly where the person was. Without JavaScript,
// or without a page to go back to, the link leads to the application's
// home page or the account page.
(function () {
  var cancel = document.getElementById("cancel");
  if (!cancel) { return; }
  cancel.addEventListener("click", function (e) {
    if (document.referrer && window.history.length > 1) {
      e.preventDefault();
      window.history.back();
    }
  });
})();
