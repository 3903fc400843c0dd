import { Type, type TObject, type TSchema } from '@sinclair/typebox'
import { PageQuery } from './common.js'
import { CommentText, Content, Description, PostListQuery, Tags, Title } from './posts.js'
import { Bio, Email, Password, Username } from './users.js'

// The RealWorld (Conduit) API's shapes, as its specification writes them: envelopes (`{user}`,
// `{article}`...), camelCase fields. Inline in each route, so its own document (/api/docs/json) holds
// only these. Bodies are strict (an unknown field is Conduit's 422), with Inkwell's bounds.

const strict = <T extends Record<string, TSchema>>(properties: T, options: { description?: string } = {}) =>
  Type.Object(properties, { additionalProperties: false, ...options })

/** `{ <name>: <schema> }`, strict as well: a body with anything beside the envelope is refused. */
export const envelope = <K extends string, T extends TObject>(name: K, schema: T) => strict({ [name]: schema } as Record<K, T>)

const Image = Type.Union([Type.String({ maxLength: 2048 }), Type.Null()], {
  description: 'The URL of the profile picture on this server, or null. Pictures are uploaded through Inkwell\'s `PUT /users/me/avatar`: ' +
    'here only the current value, `""` or null (meaning none) are accepted'
})

export const User = Type.Object({
  email: Type.String(),
  token: Type.String({ description: 'Send as `Authorization: Token <token>`; lives CONDUIT_TOKEN_TTL seconds (7 days by default) and is never refreshed' }),
  username: Type.String(),
  bio: Type.String(),
  image: Type.Union([Type.String(), Type.Null()])
})
export const UserResponse = Type.Object({ user: User })

export const LoginBody = envelope('user', strict({ email: Type.String({ minLength: 1, maxLength: 254 }), password: Type.String({ minLength: 1, maxLength: 1024 }) }))
export const RegisterBody = envelope('user', strict({ username: Username, email: Email, password: Password }))
export const UpdateUserBody = envelope('user', strict({
  email: Type.Optional(Email),
  username: Type.Optional(Username),
  password: Type.Optional(Password),
  bio: Type.Optional(Type.Union([Bio, Type.Null()])),
  image: Type.Optional(Image)
}, { description: 'Only the fields given change. A new `email` is confirmed by a link mailed to it; a new `password` is refused here (see the route)' }))

export const Profile = Type.Object({
  username: Type.String(),
  bio: Type.String(),
  image: Type.Union([Type.String(), Type.Null()]),
  following: Type.Boolean()
})
export const ProfileResponse = Type.Object({ profile: Profile })
export const UsernameParams = Type.Object({ username: Type.String({ minLength: 1, maxLength: 64 }) })

const articleFields = {
  slug: Type.String(),
  title: Type.String(),
  description: Type.String(),
  tagList: Type.Array(Type.String()),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
  favorited: Type.Boolean(),
  favoritesCount: Type.Integer({ minimum: 0 }),
  author: Profile
}
export const Article = Type.Object({ ...articleFields, body: Type.String() })
export const ArticleResponse = Type.Object({ article: Article })
/** A list's articles have no body (the specification's choice since 2024-08-16). */
export const MultipleArticlesResponse = Type.Object({ articles: Type.Array(Type.Object(articleFields)), articlesCount: Type.Integer({ minimum: 0 }) })
export const SlugParams = Type.Object({ slug: Type.String({ minLength: 1, maxLength: 200 }) })

export const NewArticleBody = envelope('article', strict({ title: Title, description: Description, body: Content, tagList: Type.Optional(Tags) }))
export const UpdateArticleBody = envelope('article', strict({
  title: Type.Optional(Title), description: Type.Optional(Description), body: Type.Optional(Content), tagList: Type.Optional(Tags)
}, { description: 'Only the fields given change; a new title gives a new slug' }))

// Inkwell's page bounds, under Conduit's names.
const pageQuery = { limit: PageQuery.properties.limit, offset: PageQuery.properties.skip }
export const ArticlesQuery = Type.Object({
  tag: PostListQuery.properties.tag,
  author: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'A username' })),
  favorited: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'A username' })),
  ...pageQuery
})
export const FeedQuery = Type.Object(pageQuery)

export const Comment = Type.Object({
  id: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
  body: Type.String(),
  author: Profile
})
export const CommentResponse = Type.Object({ comment: Comment })
export const MultipleCommentsResponse = Type.Object({ comments: Type.Array(Comment) })
export const NewCommentBody = envelope('comment', strict({ body: CommentText }))
export const CommentParams = Type.Object({ slug: SlugParams.properties.slug, id: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }) })

export const TagsResponse = Type.Object({ tags: Type.Array(Type.String()) })

export const GenericError = Type.Object({ errors: Type.Object({ body: Type.Array(Type.String()) }) })
export const conduitError = (description: string) => ({ ...GenericError, description })
