import type { TagRow } from './tags.service';

export const serializeTag = (tag: TagRow) => ({ id: tag.id, title: tag.title });
