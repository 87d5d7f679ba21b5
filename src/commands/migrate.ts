import type { Config } from '../config.js';
import { redact } from '../config.js';
import { checkConnection } from '../db/check-database.js';
import { createConsumerRole } from '../db/create-role.js';
import { withDatabase } from '../db/database.js';
import { migrate } from '../db/migrate.js';
import { repairTableContract } from '../db/table-contract.js';
import { ConfigError } from '../errors.js';
import { EXIT_OK } from './exit-codes.js';

// Role names reach SQL (quoted anyway): the same rule as slot and publication names.
const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** `budget-cdc migrate [--create-role NAME [--role-password-file PATH]]`: the schema, the live contract, the role. */
export async function migrateCommand(config: Config, roleName: string | undefined, rolePassword: string | undefined): Promise<number> {
  if (roleName !== undefined && !ROLE_NAME.test(roleName)) {
    throw new ConfigError(
      '--create-role',
      `--create-role "${roleName}" is not a valid name: use 1 to 63 lower-case letters, digits and underscores`,
    );
  }
  if (roleName === undefined && rolePassword !== undefined) {
    throw new ConfigError(
      '--role-password',
      'a role password (--role-password-file, BUDGET_CDC_ROLE_PASSWORD) goes with --create-role NAME',
    );
  }
  const { result, repaired, role } = await withDatabase(config.databaseUrl, async (db) => {
    await checkConnection(db, config.databaseUrl);
    const migrated = await migrate(db, config.publicationName);
    // The migration records say what was applied once; someone may have changed the table since.
    const repairs = await repairTableContract(db, config.publicationName);
    return {
      result: migrated,
      repaired: repairs,
      role: roleName === undefined ? undefined : await createConsumerRole(db, roleName, rolePassword),
    };
  });
  const applied = result.applied.length === 0 ? 'schema up to date' : `applied ${result.applied.join(', ')}`;
  const publication =
    result.publication === 'unchanged'
      ? ''
      : `, publication ${config.publicationName} ${result.publication === 'created' ? 'created' : 'publishes jobs again'}`;
  const repairs = repaired.length === 0 ? '' : `, repaired: ${repaired.join(', ')}`;
  process.stdout.write(`${applied}${publication}${repairs}\n`);
  if (result.publication === 'jobs-added' || repaired.length > 0) {
    process.stdout.write('changes made while the contract was broken may be missing or stale in Redis: run "budget-cdc resync"\n');
  }
  if (roleName !== undefined && role !== undefined) {
    const url = new URL(config.databaseUrl);
    url.username = roleName;
    url.password = role.passwordSet ? '***' : '';
    process.stdout.write(
      `role ${roleName} ${role.created ? 'created' : 'updated'}: LOGIN REPLICATION, SELECT on jobs${role.passwordSet ? ', password set' : ', no password (set one with --role-password-file PATH or BUDGET_CDC_ROLE_PASSWORD)'}; ` +
        `run the consumer as ${redact(url.toString())}\n`,
    );
  }
  return EXIT_OK;
}
