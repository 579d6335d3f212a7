/**
 * The real PostgreSQL the tests use: `RM_TEST_PG_URL`, exported by `eval "$(bash scripts/ci-postgres.sh)"`
 * (which .ci/run does). Outside CI a missing URL skips those tests with a loud warning; in CI it fails.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

const url = process.env.RM_TEST_PG_URL;

/** The admin URL, or undefined (after a warning) when the tests that need it must be skipped. */
export function postgresUrl(): string | undefined {
  if (url) return url;
  if (process.env.CI) {
    throw new Error('CI must provide PostgreSQL: RM_TEST_PG_URL is unset (see scripts/ci-postgres.sh)');
  }
  console.warn(
    '\n!!! RM_TEST_PG_URL is not set: the PostgreSQL variants of these tests are SKIPPED.\n' +
      '!!! Start one with: eval "$(bash scripts/ci-postgres.sh)"\n',
  );
  return undefined;
}

/** A fresh, empty database on the test server; `drop()` removes it (closing its connections). */
export async function freshDatabase(admin: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `rm_test_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const dbUrl = new URL(admin);
  dbUrl.pathname = `/${name}`;
  return {
    url: dbUrl.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
