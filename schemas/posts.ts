import { Type } from '@sinclair/typebox'
import { cursorPageOf, Id, NullableString, ref, Timestamp } from './common.js'

// At least one character that is not white space.
const NOT_BLANK = '\\S'

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
}, { $id: 'Post', title: 'Post' })

export const PostPage = cursorPageOf(Post, 'PostPage')

const Title = Type.String({ minLength: 1, maxLength: 200, pattern: NOT_BLANK, description: '1 to 200 characters, not only white space' })
const Content = Type.String({ minLength: 1, maxLength: 50_000, pattern: NOT_BLANK, description: '1 to 50000 characters, not only white space' })

export const CreatePostBody = Type.Object({ title: Title, content: Content }, { additionalProperties: false })

export const UpdatePostBody = Type.Object({
  title: Type.Optional(Title),
  content: Type.Optional(Content)
}, { additionalProperties: false })
