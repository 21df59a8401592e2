// Tailcall request hook for Query.users in kyc.graphql: answers the POSTed list of ids as `[{ id }]` without sending
// the request (an `onRequest` hook returns either `{ request }`, to send it, or `{ response }`, to answer it itself).
function usersFromIds({ request }) {
  const ids = JSON.parse(request.body)
  return {
    response: {
      status: 200,
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(ids.map((id) => ({ id }))),
    },
  }
}
