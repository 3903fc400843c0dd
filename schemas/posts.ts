import { Type } from '@sinclair/typebox'
import { cursorPageOf, Id, NullableString, ref, Timestamp } from './common.js'

// At least one character that is not white space.
const NOT_BLANK = '\\S'

const POST_EXAMPLE = {
  id: 42,
  title: 'Hello',
  content: 'First post',
  author: { id: 7, username: 'ada', avatar_url: null },
  like_count: 1,
  liked: true,
  created_at: '2026-11-28T12:00:00.000Z',
  updated_at: '2026-11-28T12:00:00.000Z'
}

export const PostAuthor = Type.Object({
  id: Id,
  username: Type.String(),
  avatar_url: NullableString({ description: 'Path of the author\'s profile picture on this server, or null' })
}, { $id: 'PostAuthor', title: 'PostAuthor' })

export const Post = Type.Object({
  id: Id,
  title: Type.String(),
  content: Type.String(),
  author: ref(PostAuthor),
  like_count: Type.Integer({ minimum: 0 }),
  liked: Type.Optional(Type.Boolean({ description: 'Whether the caller likes it; present only when the request carries a valid token' })),
  created_at: Timestamp,
  updated_at: Timestamp
}, { $id: 'Post', title: 'Post', examples: [POST_EXAMPLE] })

export const PostPage = cursorPageOf(Post, 'PostPage', [{ items: [POST_EXAMPLE], total: 1, skip: 0, limit: 20, has_more: false, next_cursor: null }])

const Title = Type.String({ minLength: 1, maxLength: 200, pattern: NOT_BLANK, description: '1 to 200 characters, not only white space' })
const Content = Type.String({ minLength: 1, maxLength: 50_000, pattern: NOT_BLANK, description: '1 to 50000 characters, not only white space' })

export const CreatePostBody = Type.Object({ title: Title, content: Content }, {
  additionalProperties: false, $id: 'CreatePostBody', title: 'CreatePostBody', examples: [{ title: 'Hello', content: 'First post' }]
})

export const UpdatePostBody = Type.Object({
  title: Type.Optional(Title),
  content: Type.Optional(Content)
}, { additionalProperties: false, $id: 'UpdatePostBody', title: 'UpdatePostBody', description: 'Only the fields given change' })
