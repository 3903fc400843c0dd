export interface PageRequest {
  skip: number
  limit: number
}

export interface Page<T> {
  items: T[]
  total: number
  skip: number
  limit: number
  has_more: boolean
}

export function toPage<T> (items: T[], total: number, { skip, limit }: PageRequest): Page<T> {
  return { items, total, skip, limit, has_more: skip + items.length < total }
}
