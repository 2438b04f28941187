import { Migration } from '@mikro-orm/migrations';

export class Migration20261124220455_gateway_leases extends Migration {
  override name = 'Migration20261124220455_gateway_leases';

  override up(): void | Promise<void> {
    this.addSql(
      `create table \`gateway_instance\` (\`id\` text not null primary key, \`beat\` integer not null default 0, \`started_at\` datetime not null, \`beat_at\` datetime not null, \`declared_dead_by\` text null, \`declared_dead_at\` datetime null);`,
    );

    this.addSql(
      `create table \`gateway_lease\` (\`instance\` text not null, \`connection_id\` text not null, \`agent_id\` text not null, \`assignment_id\` text not null, \`bound_at\` datetime not null, \`claimed_by\` text null, primary key (\`instance\`, \`connection_id\`));`,
    );
    this.addSql(`create index \`gateway_lease_claimed_by_index\` on \`gateway_lease\` (\`claimed_by\`);`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists \`gateway_instance\`;`);
    this.addSql(`drop table if exists \`gateway_lease\`;`);
  }
}
