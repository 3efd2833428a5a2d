// The copy button is progressive: without JavaScript it stays hidden and
// the text can still be selected by hand. Its messages come translated in
// data attributes. It copies a field's value, or an element's text (a list
// of codes); data-strip drops the spaces that group a key for reading.
// A #print button, hidden likewise, prints the page.
(function () {
  var print = document.getElementById("print");
  if (print && window.print) {
    print.hidden = false;
    print.addEventListener("click", function () { window.print(); });
  }
})();
(function () {
  var button = document.getElementById("copy");
  if (!button || !navigator.clipboard) { return; }
  var field = document.getElementById(button.getAttribute("data-copy"));
  var status = document.getElementById("copied");
  var isField = "value" in field && typeof field.select === "function";
  var select = function () {
    if (isField) { field.select(); return; }
    var range = document.createRange();
    range.selectNodeContents(field);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  };
  button.hidden = false;
  button.addEventListener("click", function () {
    var text = isField ? field.value : field.innerText;
    if (button.hasAttribute("data-strip")) { text = text.replace(/\s+/g, ""); }
    navigator.clipboard.writeText(text).then(function () {
      status.textContent = button.getAttribute("data-done");
    }, function () {
      select();
      status.textContent = button.getAttribute("data-failed");
    });
  });
  if (isField) { field.addEventListener("focus", function () { field.select(); }); }
})();
