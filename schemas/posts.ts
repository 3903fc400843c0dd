import { Type } from '@sinclair/typebox'
import { COMMENT_MAX_LENGTH, DESCRIPTION_MAX_LENGTH, TAG_MAX_LENGTH, TAGS_MAX } from '../src/policy.js'
import { CursorPageQuery, cursorPageOf, Id, NullableString, pageOf, ref, Timestamp } from './common.js'

// At least one character that is not white space.
const NOT_BLANK = '\\S'

const POST_EXAMPLE = {
  id: 42,
  title: 'Hello',
  description: 'Where it all begins',
  slug: 'hello',
  content: 'First post',
  tags: ['intro', 'news'],
  author: { id: 7, username: 'ada', avatar_url: null, following: false },
  like_count: 1,
  liked: true,
  created_at: '2026-11-28T12:00:00.000Z',
  updated_at: '2026-11-28T12:00:00.000Z'
}

export const PostAuthor = Type.Object({
  id: Id,
  username: Type.String(),
  avatar_url: NullableString({ description: 'Path of the author\'s profile picture on this server, or null' }),
  following: Type.Optional(Type.Boolean({ description: 'Whether the caller follows the author; present only when the request carries a valid token' }))
}, { $id: 'PostAuthor', title: 'PostAuthor' })

export const Post = Type.Object({
  id: Id,
  title: Type.String(),
  description: Type.String({ description: 'A short summary; empty when the author gave none' }),
  slug: Type.String({
    description: 'Made from the title: its words, lower case, without accents, joined by `-` (`post` when it has none); ' +
      'when another post already has those, the id follows them (`hello-42`). A new title gives a new slug, and the old one then finds nothing'
  }),
  content: Type.String(),
  tags: Type.Array(Type.String(), { description: 'Normalised (trimmed, lower case), in the order the author gave them' }),
  author: ref(PostAuthor),
  like_count: Type.Integer({ minimum: 0 }),
  liked: Type.Optional(Type.Boolean({ description: 'Whether the caller likes it; present only when the request carries a valid token' })),
  created_at: Timestamp,
  updated_at: Timestamp
}, { $id: 'Post', title: 'Post', examples: [POST_EXAMPLE] })

export const PostPage = cursorPageOf(Post, 'PostPage', [{ items: [POST_EXAMPLE], total: 1, skip: 0, limit: 20, has_more: false, next_cursor: null }])

// A post's and a comment's fields, shared with the Conduit API's bodies (schemas/conduit.ts).
export const Title = Type.String({ minLength: 1, maxLength: 200, pattern: NOT_BLANK, description: '1 to 200 characters, not only white space' })
export const Content = Type.String({ minLength: 1, maxLength: 50_000, pattern: NOT_BLANK, description: '1 to 50000 characters, not only white space' })

export const Description = Type.String({ maxLength: DESCRIPTION_MAX_LENGTH, description: `Up to ${DESCRIPTION_MAX_LENGTH} characters` })
const Tag = Type.String({
  minLength: 1, maxLength: TAG_MAX_LENGTH * 4, pattern: '^[^,]*[^,\\s][^,]*$',
  description: `A tag: stored trimmed, with runs of white space made one space, in lower case; 1 to ${TAG_MAX_LENGTH} characters so, without commas or control characters`
})
export const Tags = Type.Array(Tag, { maxItems: TAGS_MAX, description: `Up to ${TAGS_MAX} tags; tags equal once normalised count once` })

export const CreatePostBody = Type.Object({
  title: Title,
  content: Content,
  description: Type.Optional(Description),
  tags: Type.Optional(Tags)
}, {
  additionalProperties: false, $id: 'CreatePostBody', title: 'CreatePostBody', examples: [{ title: 'Hello', content: 'First post', tags: ['intro'] }]
})

export const UpdatePostBody = Type.Object({
  title: Type.Optional(Title),
  content: Type.Optional(Content),
  description: Type.Optional(Description),
  tags: Type.Optional({ ...Tags, description: 'Replaces all the post\'s tags (`[]` removes them)' })
}, { additionalProperties: false, $id: 'UpdatePostBody', title: 'UpdatePostBody', description: 'Only the fields given change' })

export const PostListQuery = Type.Object({
  ...CursorPageQuery.properties,
  author: Type.Optional({ ...Id, description: 'Only this user\'s posts (their id)' }),
  tag: Type.Optional(Type.String({ minLength: 1, maxLength: TAG_MAX_LENGTH * 4, description: 'Only posts with this tag (normalised as tags are)' })),
  liked_by: Type.Optional({ ...Id, description: 'Only posts this user likes (their id)' })
})

export const Comment = Type.Object({
  id: Id,
  post_id: Id,
  body: Type.String(),
  author: ref(PostAuthor),
  created_at: Timestamp,
  updated_at: Timestamp
}, {
  $id: 'Comment',
  title: 'Comment',
  examples: [{ id: 3, post_id: 42, body: 'Well said', author: { id: 8, username: 'grace', avatar_url: null }, created_at: '2026-11-28T12:05:00.000Z', updated_at: '2026-11-28T12:05:00.000Z' }]
})

export const CommentPage = cursorPageOf(Comment, 'CommentPage')

export const CommentListQuery = Type.Object({
  ...CursorPageQuery.properties,
  order: Type.Union([Type.Literal('newest'), Type.Literal('oldest')], { default: 'newest', description: 'Newest first (the default) or oldest first' })
})

export const CommentText = Type.String({ minLength: 1, maxLength: COMMENT_MAX_LENGTH, pattern: NOT_BLANK, description: `1 to ${COMMENT_MAX_LENGTH} characters, not only white space` })

export const CreateCommentBody = Type.Object({ body: CommentText }, { additionalProperties: false, $id: 'CreateCommentBody', title: 'CreateCommentBody', examples: [{ body: 'Well said' }] })

export const CommentParams = Type.Object({ id: Id, comment_id: Id })

export const TagCount = Type.Object({
  name: Type.String(),
  post_count: Type.Integer({ minimum: 1, description: 'Posts that carry the tag' })
}, { $id: 'TagCount', title: 'TagCount' })

export const TagPage = pageOf(TagCount, 'TagPage', [{ items: [{ name: 'news', post_count: 12 }], total: 1, skip: 0, limit: 20, has_more: false }])

