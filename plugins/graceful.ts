import fp from 'fastify-plugin'

/**
 * While the server drains on shutdown, every response says `Connection: close`, so a client that
 * keeps its connection alive lets go after its in-flight request instead of holding close open.
 */
export default fp(async (app) => {
  let closing = false
  app.addHook('preClose', async () => { closing = true })
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close')
  })
}, { name: 'graceful' })
