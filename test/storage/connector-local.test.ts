// The connector's local state on SQLite (`:memory:`): the shared contract that D1 runs too
// (test/worker/d1-itsm.test.ts).
import { openSqliteStore } from '../../src/runtime/node.js';
import { describeConnectorLocalContract } from './connector-local-contract.js';

describeConnectorLocalContract('sqlite :memory:', async () => openSqliteStore(':memory:'));
