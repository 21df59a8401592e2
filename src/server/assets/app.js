// GraphiQL's fetchers and rendering, served as /graphiql/assets/app-<digest>.js (src/server/pages.rs) so that the
// page needs no inline script under its Content-Security-Policy.
//
// Queries and mutations go to POST /graphql with the Headers pane's headers. Subscriptions go to /graphql/ws over
// graphql-transport-ws, with the Headers pane's Authorization in connection_init (a browser cannot set headers on a
// WebSocket).
'use strict';

(function () {
  const http = GraphiQL.createFetcher({ url: new URL('/graphql', location.href).toString() });

  function operationType(params) {
    const text = params.query.replace(/#[^\n]*/g, '');
    const operations = [...text.matchAll(/(?:^|[}\s])(query|mutation|subscription)\b\s*([_A-Za-z][_0-9A-Za-z]*)?/g)];
    const chosen = params.operationName
      ? operations.find((m) => m[2] === params.operationName)
      : operations[0];
    return chosen ? chosen[1] : 'query';
  }

  async function* subscribe(params, headers) {
    const url = new URL('/graphql/ws', location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(url, 'graphql-transport-ws');
    const queue = [];
    let wake = null;
    const push = (item) => { queue.push(item); if (wake) { wake(); wake = null; } };
    socket.onopen = () => socket.send(JSON.stringify({
      type: 'connection_init',
      payload: { Authorization: headers.Authorization || headers.authorization || '' },
    }));
    socket.onmessage = (message) => {
      const data = JSON.parse(message.data);
      if (data.type === 'connection_ack') {
        socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: params }));
      } else if (data.type === 'ping') {
        socket.send(JSON.stringify({ type: 'pong' }));
      } else if (data.type === 'next') {
        push({ value: data.payload });
      } else if (data.type === 'error') {
        push({ value: { errors: data.payload }, end: true });
      } else if (data.type === 'complete') {
        push({ end: true });
      }
    };
    socket.onclose = (event) => push({
      value: event.code === 1000 ? undefined : { errors: [{ message: `connection closed: ${event.code} ${event.reason}` }] },
      end: true,
    });
    try {
      for (;;) {
        if (queue.length === 0) await new Promise((resolve) => { wake = resolve; });
        const item = queue.shift();
        if (item.value) yield item.value;
        if (item.end) return;
      }
    } finally {
      if (socket.readyState <= 1) socket.close(1000);
    }
  }

  // Every operation needs a token (the gateway answers 401 without one). GraphiQL introspects the schema as the page
  // loads, before anyone has filled the Headers pane: that, and any operation run while the pane holds no token or
  // still the placeholder, is answered here with what to do rather than sent to fail.
  const missingToken = {
    errors: [{
      message: 'No token: put {"Authorization": "Bearer <token>"} in the Headers pane, then run the operation '
        + 'again and re-fetch the schema (the circular arrows in the sidebar, or Ctrl+Shift+R).',
      extensions: { code: 'UNAUTHENTICATED' },
    }],
  };

  function fetcher(params, options) {
    const headers = (options && options.headers) || {};
    const authorization = String(headers.Authorization || headers.authorization || '').trim();
    if (!authorization || authorization.includes('<')) return Promise.resolve(missingToken);
    return operationType(params) === 'subscription' ? subscribe(params, headers) : http(params, options);
  }

  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher,
      defaultEditorToolsVisibility: true,
      defaultHeaders: '{\n  "Authorization": "Bearer <token from `cargo run -q -- token ...`>"\n}',
    })
  );
})();
