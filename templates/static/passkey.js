// Passkeys: "Sign in with a passkey" (#passkey-form, on the sign-in
// pages), "Use a passkey" (#passkey-second, on the second-factor page)
// and "Add a passkey" (#passkey-register, on the account page and the
// enrolment page of a sign-in). Each asks the server for the ceremony's
// options (data-options, posted with the form's csrf and interaction),
// hands them to the browser's WebAuthn API, and posts the authenticator's
// answer (credential) with the sealed ceremony state (state). What goes
// wrong in the browser is said in words: the texts come translated from
// the page (#passkey-error's data attributes). Without JavaScript, or
// without WebAuthn, the buttons stay hidden.
(function () {
  "use strict";
  var supported = !!(window.PublicKeyCredential && navigator.credentials && window.fetch);

  function fromB64(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }
  function toB64(buf) {
    if (!buf) { return null; }
    var bytes = new Uint8Array(buf), s = "";
    for (var i = 0; i < bytes.length; i++) { s += String.fromCharCode(bytes[i]); }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function ids(list) {
    return (list || []).map(function (c) {
      var d = { type: c.type, id: fromB64(c.id) };
      if (c.transports) { d.transports = c.transports; }
      return d;
    });
  }
  function creationOptions(o) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) { return PublicKeyCredential.parseCreationOptionsFromJSON(o); }
    var c = Object.assign({}, o);
    c.challenge = fromB64(o.challenge);
    c.user = Object.assign({}, o.user, { id: fromB64(o.user.id) });
    c.excludeCredentials = ids(o.excludeCredentials);
    return c;
  }
  function requestOptions(o) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) { return PublicKeyCredential.parseRequestOptionsFromJSON(o); }
    var c = Object.assign({}, o);
    c.challenge = fromB64(o.challenge);
    c.allowCredentials = ids(o.allowCredentials);
    return c;
  }
  // credentialJSON is the answer in the WebAuthn JSON form the server
  // parses (PublicKeyCredential.toJSON where the browser has it).
  function credentialJSON(cred) {
    if (typeof cred.toJSON === "function") { return JSON.stringify(cred.toJSON()); }
    var r = cred.response, out = {
      id: cred.id, rawId: toB64(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: toB64(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = toB64(r.attestationObject);
      if (r.getTransports) { out.response.transports = r.getTransports(); }
    } else {
      out.response.authenticatorData = toB64(r.authenticatorData);
      out.response.signature = toB64(r.signature);
      out.response.userHandle = toB64(r.userHandle);
    }
    return JSON.stringify(out);
  }

  var box = document.getElementById("passkey-error");
  function say(text) {
    if (!box) { return; }
    box.textContent = text;
    box.hidden = false;
    box.focus();
  }
  function explain(err) {
    if (err && err.serverMessage) { say(err.serverMessage); return; }
    var name = err && err.name, d = box ? box.dataset : {};
    switch (name) {
      case "NotAllowedError": case "AbortError": say(d.cancelled); break;
      case "InvalidStateError": say(d.exists); break;
      case "SecurityError": say(d.security); break;
      case "NotSupportedError": say(d.unsupported); break;
      case "TypeError": say(d.network); break;
      default: say(d.failed);
    }
  }

  // options posts the csrf and interaction fields of form to url and
  // returns the answer: {options, state}, or a message to show.
  function options(url, form) {
    var body = new URLSearchParams();
    ["csrf", "interaction"].forEach(function (n) {
      if (form.elements[n]) { body.set(n, form.elements[n].value); }
    });
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (res) {
      return res.json().then(function (j) {
        if (!res.ok || !j.options) { throw { serverMessage: j.error || (box && box.dataset.failed) }; }
        return j;
      });
    });
  }

  function ceremony(form, button, run) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (button.disabled) { return; }
      button.disabled = true;
      if (box) { box.hidden = true; }
      options(form.dataset.options, form).then(function (j) {
        return run(j.options).then(function (cred) {
          if (!cred) { throw { name: "NotAllowedError" }; }
          form.elements.state.value = j.state;
          form.elements.credential.value = credentialJSON(cred);
          // "Keep me signed in" of the password form counts for a passkey too.
          var keep = document.getElementById("remember");
          if (form.elements.remember && keep) { form.elements.remember.value = keep.checked ? "yes" : ""; }
          form.submit();
        });
      }).catch(function (err) {
        button.disabled = false;
        explain(err);
      });
    });
  }

  var signIn = document.getElementById("passkey-form");
  if (signIn && supported) {
    document.getElementById("passkey-signin").hidden = false;
    signIn.hidden = false;
    ceremony(signIn, document.getElementById("passkey-button"), function (o) {
      return navigator.credentials.get({ publicKey: requestOptions(o.publicKey) });
    });
  }

  if (supported) {
    Array.prototype.forEach.call(document.querySelectorAll("[data-passkey-show]"), function (e) { e.hidden = false; });
  }

  // The second-factor page has one form (the code's); the passkey's
  // answer goes in a form of its own, made here.
  var second = document.getElementById("passkey-second");
  if (second && supported && second.form) {
    second.hidden = false;
    second.addEventListener("click", function () {
      var page = second.form;
      if (second.disabled) { return; }
      second.disabled = true;
      if (box) { box.hidden = true; }
      options(second.dataset.options, page).then(function (j) {
        return navigator.credentials.get({ publicKey: requestOptions(j.options.publicKey) }).then(function (cred) {
          if (!cred) { throw { name: "NotAllowedError" }; }
          var f = document.createElement("form");
          f.method = "post";
          f.action = document.getElementById("passkey-option").dataset.action;
          f.hidden = true;
          [["csrf", page.elements.csrf.value], ["interaction", page.elements.interaction.value],
           ["state", j.state], ["credential", credentialJSON(cred)]].forEach(function (kv) {
            var i = document.createElement("input");
            i.type = "hidden"; i.name = kv[0]; i.value = kv[1];
            f.appendChild(i);
          });
          document.body.appendChild(f);
          f.submit();
        });
      }).catch(function (err) {
        second.disabled = false;
        explain(err);
      });
    });
  }

  var register = document.getElementById("passkey-register");
  if (register) {
    if (!supported) {
      var no = document.getElementById("passkey-unsupported");
      if (no) { no.hidden = false; }
    } else {
      register.hidden = false;
      ceremony(register, register.querySelector("button[type=submit]"), function (o) {
        return navigator.credentials.create({ publicKey: creationOptions(o.publicKey) });
      });
    }
  }
})();
