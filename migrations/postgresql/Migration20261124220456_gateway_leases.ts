import { Migration } from '@mikro-orm/migrations';

export class Migration20261124220456_gateway_leases extends Migration {
  override name = 'Migration20261124220456_gateway_leases';

  override up(): void | Promise<void> {
    this.addSql(
      `create table "gateway_instance" ("id" varchar(255) not null, "beat" int not null default 0, "started_at" timestamptz not null, "beat_at" timestamptz not null, "declared_dead_by" varchar(255) null, "declared_dead_at" timestamptz null, primary key ("id"));`,
    );

    this.addSql(
      `create table "gateway_lease" ("instance" varchar(255) not null, "connection_id" varchar(255) not null, "agent_id" varchar(255) not null, "assignment_id" varchar(255) not null, "bound_at" timestamptz not null, "claimed_by" varchar(255) null, primary key ("instance", "connection_id"));`,
    );
    this.addSql(`create index "gateway_lease_claimed_by_index" on "gateway_lease" ("claimed_by");`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "gateway_instance" cascade;`);
    this.addSql(`drop table if exists "gateway_lease" cascade;`);
  }
}
