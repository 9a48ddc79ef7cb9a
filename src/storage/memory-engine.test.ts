// The in-memory engine store (the impact preview's throw-away state): the shared engine storage
// contract, unchanged, as the SQLite and D1 adapters run it.
import { describeEngineStoreContract } from '../../test/storage/engine-contract.js';
import { createMemoryEngineStore } from './memory-engine.js';

describeEngineStoreContract('memory', async () => createMemoryEngineStore());
