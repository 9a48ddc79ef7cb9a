// A throw-away engine store held in memory, for evaluations that must leave no trace: the impact
// preview (`POST /admin/rules/preview`) counts the candidate's and the baseline's correlations and
// once_per keys in two of these. It runs where SQLite does not (a Worker has D1, which is the
// live state, and no in-memory database) and behaves as the SQL adapters do: the same engine
// storage contract (test/storage/engine-contract.ts) runs against it. One process, one caller at
// a time (JavaScript runs each method to its end), so no decision can race.
import type {
  CorrelationInput,
  CorrelationMember,
  EffectRecord,
  EngineStore,
  OnceClaim,
  StoredPlan,
} from './engine-port.js';

interface Member extends CorrelationMember {
  firstAt: number;
  at: number;
}

interface Claim {
  claimant: string;
  at: number;
}

export function createMemoryEngineStore(): EngineStore {
  // Keys join their parts with NUL, which no account, rule id or key text holds.
  const correlations = new Map<string, Map<string, Member>>();
  const claims = new Map<string, Claim & { account: number }>();
  const plans = new Map<string, StoredPlan>();
  const effects = new Map<string, EffectRecord[]>();
  /** Every effect recorded, in order, for latestEffectWithPlan's tie-break (the last recorded wins). */
  const recorded: EffectRecord[] = [];
  const key = (...parts: (string | number)[]) => parts.join('\u0000');
  const latestOn = (objectId: string): EffectRecord | null => {
    let latest: EffectRecord | null = null;
    for (const effect of recorded) {
      if (effect.objectId !== objectId || effect.outcome !== 'done') continue;
      if (latest === null || effect.at >= latest.at) latest = effect;
    }
    return latest ? { ...latest } : null;
  };

  return {
    async correlate(input: CorrelationInput) {
      const group = key(input.account, input.ruleId, input.key);
      const members = correlations.get(group) ?? new Map<string, Member>();
      correlations.set(group, members);
      const start = input.at - input.windowMs;
      for (const [id, member] of members) if (member.at <= start) members.delete(id);
      const seen = members.get(input.objectId);
      if (seen) seen.at = Math.max(seen.at, input.at);
      else {
        members.set(input.objectId, {
          id: input.objectId,
          type: input.objectType,
          firstAt: input.at,
          at: input.at,
        });
      }
      return [...members.values()]
        .filter((member) => member.at > start)
        .sort((a, b) => a.firstAt - b.firstAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        .map(({ id, type }) => ({ id, type }));
    },

    async claimOnce(claim: OnceClaim) {
      const id = key(claim.account, claim.ruleId, claim.key);
      const held = claims.get(id);
      if (held?.claimant === claim.claimant) return true;
      const lapsed =
        held !== undefined && claim.windowMs !== null && claim.at - held.at >= claim.windowMs;
      if (held && !lapsed) return false;
      claims.set(id, { account: claim.account, claimant: claim.claimant, at: claim.at });
      return true;
    },

    async releaseClaims(account: number, prefix: string) {
      let released = 0;
      for (const [id, held] of claims) {
        if (held.account === account && held.claimant.startsWith(prefix)) {
          claims.delete(id);
          released++;
        }
      }
      return released;
    },

    async renewClaim(claim: Omit<OnceClaim, 'windowMs'>) {
      const held = claims.get(key(claim.account, claim.ruleId, claim.key));
      if (held?.claimant !== claim.claimant) return false;
      held.at = Math.max(held.at, claim.at);
      return true;
    },

    async savePlan(plan: StoredPlan) {
      const stored = plans.get(plan.key) ?? { ...plan };
      plans.set(plan.key, stored);
      return { ...stored };
    },

    async getPlan(planKey: string) {
      const stored = plans.get(planKey);
      return stored ? { ...stored } : null;
    },

    async recordEffect(effect: EffectRecord) {
      const list = effects.get(effect.planKey) ?? [];
      if (list.some((item) => item.callIndex === effect.callIndex)) return;
      list.push({ ...effect });
      effects.set(effect.planKey, list);
      recorded.push(list.at(-1) as EffectRecord);
    },

    async listEffects(planKey: string) {
      return [...(effects.get(planKey) ?? [])]
        .sort((a, b) => a.callIndex - b.callIndex)
        .map((effect) => ({ ...effect }));
    },

    async latestEffectWithPlan(objectId: string) {
      const effect = latestOn(objectId);
      if (!effect) return null;
      const plan = plans.get(effect.planKey);
      return { effect, plan: plan ? { ...plan } : null };
    },

    async purge(before: number) {
      let deleted = 0;
      for (const [planKey, plan] of plans) {
        if (plan.createdAt >= before) continue;
        plans.delete(planKey);
        effects.delete(planKey);
        deleted++;
      }
      for (let index = recorded.length - 1; index >= 0; index--) {
        if (!effects.has((recorded[index] as EffectRecord).planKey)) recorded.splice(index, 1);
      }
      for (const members of correlations.values()) {
        for (const [id, member] of members) if (member.at < before) members.delete(id);
      }
      return deleted;
    },

    async close() {
      correlations.clear();
      claims.clear();
      plans.clear();
      effects.clear();
      recorded.length = 0;
    },
  };
}
