-- The lab's application database: an app role that owns the schema, a reporting
-- role that runs long analytics (never a target of pg_terminate), and a monitor role.
CREATE ROLE app LOGIN PASSWORD :'app_password';
CREATE ROLE analyst LOGIN PASSWORD :'analyst_password';
GRANT pg_monitor, pg_signal_backend TO app;
CREATE DATABASE app OWNER app;
\connect app
SET ROLE app;
CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total numeric(10, 2) NOT NULL, note text);
CREATE TABLE products (id serial PRIMARY KEY, name text NOT NULL, price numeric(10, 2) NOT NULL);
INSERT INTO orders (customer, total, note) SELECT 'customer-' || g, (g * 7) % 500 + 0.99, '' FROM generate_series(1, 200) g;
INSERT INTO products (name, price) SELECT 'product-' || g, (g * 3) % 90 + 0.49 FROM generate_series(1, 25) g;
GRANT SELECT ON orders, products TO analyst;
RESET ROLE;
