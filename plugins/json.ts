import fp from 'fastify-plugin'
import secureJson from 'secure-json-parse'

const utf8 = new TextDecoder('utf-8', { fatal: true })

function badRequest (message: string, code: string) {
  return Object.assign(new Error(message), { statusCode: 400, code })
}

/**
 * JSON bodies as RFC 8259 wants them: UTF-8 only, and invalid bytes refused (Fastify's default
 * parser replaces them with U+FFFD and stores that). Prototype-poisoning keys stay refused.
 */
export default fp(async (app) => {
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body: Buffer, done) => {
    const charset = /;\s*charset=("?)([^";\s]+)\1/i.exec(request.headers['content-type'] ?? '')?.[2]
    if (charset !== undefined && charset.toLowerCase() !== 'utf-8' && charset.toLowerCase() !== 'utf8') {
      return done(Object.assign(new Error('JSON bodies must be UTF-8'), { statusCode: 415, code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' }), undefined)
    }
    if (body.length === 0) return done(badRequest('Body cannot be empty when content-type is set to \'application/json\'', 'FST_ERR_CTP_EMPTY_JSON_BODY'), undefined)
    let text: string
    try {
      text = utf8.decode(body)
    } catch {
      return done(badRequest('Body is not valid UTF-8', 'INVALID_UTF8'), undefined)
    }
    try {
      done(null, secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }))
    } catch {
      done(badRequest('Body is not valid JSON', 'FST_ERR_CTP_INVALID_JSON_BODY'), undefined)
    }
  })
}, { name: 'json' })
