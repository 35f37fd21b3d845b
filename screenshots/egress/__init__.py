"""The egress policy: what a captured page may reach on the network, and its enforcement.

A page is an attacker's code. Whatever it loads (the page itself, redirects, frames, images,
styles, scripts, fetch/XHR, WebSockets, workers, service workers, prefetches, form posts,
beacons) goes through one filtering forward proxy per engine,
:class:`~screenshots.egress.proxy.EgressProxy`,
on ``127.0.0.1``. Chromium is started with ``--proxy-server`` pointing at it and
``--proxy-bypass-list=<-loopback>`` (so loopback and link-local addresses, which Chromium would
otherwise reach directly, go through it too), with WebRTC's non-proxied UDP disabled and its
own DNS resolver switched off (see :func:`engines.chromium.chromium_flags`).

The proxy resolves each host *once*, refuses the connection if *any* address it resolved to is
refused by :class:`~screenshots.egress.policy.EgressPolicy`, and otherwise dials exactly the
address it
checked, so DNS rebinding has no window. A refused request gets an HTTP 403 whose body says why
(``blocked by egress policy: 10.0.0.5 is private``); the proxy remembers the refusal so the
engine can turn a refused main document into an error row and count refused subresources.

- :mod:`screenshots.egress.policy`: classifying an address, the allow-list, reading numeric hosts
(pure);
- :mod:`screenshots.egress.proxy`: the proxy (asyncio, in a background thread), its server and
  lifecycle; its jobs apart: :mod:`~screenshots.egress.session` (one browser connection),
  :mod:`~screenshots.egress.http1` (HTTP/1.1 framing, by h11), :mod:`~screenshots.egress.forward`
  (plain HTTP sent on), :mod:`~screenshots.egress.relay` (tunnels),
  :mod:`~screenshots.egress.dial` (resolve once, check, dial what was checked) and
  :mod:`~screenshots.egress.failures` (failures remembered and counted);
- :mod:`screenshots.egress.guard`: what an engine calls: start the proxy, flag value, protect the
browser's
  control ports, per-capture refusal count, the error for a refused main document.

Defaults: the policy is on (``SCREENSHOT_EGRESS_POLICY=on``) and nothing is exempt
(``SCREENSHOT_EGRESS_ALLOW`` empty). See ``SECURITY.md`` for what this does and does not
guarantee.
"""
