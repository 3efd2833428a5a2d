// Front-channel logout: the page's hidden iframes tell each application
// that the person signed out. Once they have all loaded (the window's load
// event waits for them), or after a few seconds at most, go on to where the
// application asked to return. Without JavaScript the link does the same.
(function () {
  var link = document.getElementById("continue");
  if (!link) { return; }
  var done = false;
  function go() {
    if (done) { return; }
    done = true;
    window.location.replace(link.href);
  }
  if (document.readyState === "complete") {
    go();
  } else {
    window.addEventListener("load", go);
  }
  window.setTimeout(go, 5000);
})();
