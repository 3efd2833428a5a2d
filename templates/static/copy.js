// The copy button is progressive: without JavaScript it stays hidden and
// the code can still be selected by hand. Its messages come translated in
// data attributes.
(function () {
  var button = document.getElementById("copy");
  if (!button || !navigator.clipboard) { return; }
  var field = document.getElementById(button.getAttribute("data-copy"));
  var status = document.getElementById("copied");
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(field.value).then(function () {
      status.textContent = button.getAttribute("data-done");
    }, function () {
      field.select();
      status.textContent = button.getAttribute("data-failed");
    });
  });
  field.addEventListener("focus", function () { field.select(); });
})();
