/**
 * Workflow histories to and from Temporal's JSON form (what `temporal workflow show --output json`
 * prints and the Web UI imports).
 *
 * Why not `historyToJSON` / `historyFromJSON` of @temporalio/common: in this install
 * @temporalio/common and @temporalio/proto each carry their own copy of protobufjs 8 (the top-level
 * one is 7), and those helpers hand a type made by one copy to the JSON code of the other, which
 * throws "type must be a Type". Here both come from the copy @temporalio/proto resolves.
 */
import { createRequire } from 'node:module';
import type { History } from '@temporalio/common/lib/proto-utils.js';

const require = createRequire(import.meta.url);
const fromProto = createRequire(require.resolve('@temporalio/proto'));

interface ProtoJson {
  toJson(type: unknown, message: unknown): unknown;
  fromJson(type: unknown, json: unknown, options?: { ignoreUnknownFields?: boolean }): unknown;
}
interface HistoryType {
  fromObject(object: unknown): unknown;
}

const protojson = fromProto('protobufjs/ext/protojson') as ProtoJson;
const proto = require('@temporalio/proto') as Record<string, unknown>;
const { patchProtobufRoot } = require('@temporalio/proto/lib/patch-protobuf-root') as {
  patchProtobufRoot<T>(root: T): T & { lookupType(name: string): HistoryType };
};
const historyType = patchProtobufRoot(proto).lookupType('temporal.api.history.v1.History');

/** A history (as `fetchHistory()` returns it) as a plain JSON value in Temporal's JSON form. */
export function historyToJsonValue(history: History): unknown {
  return protojson.toJson(historyType, historyType.fromObject(history));
}

/** A history in Temporal's JSON form, decoded for replay (Longs, enums as numbers). */
export function historyFromJsonValue(json: unknown): History {
  const decoded = protojson.fromJson(historyType, json, { ignoreUnknownFields: true });
  if (!decoded) throw new TypeError('not a workflow history in Temporal\'s JSON form');
  return decoded as History;
}
