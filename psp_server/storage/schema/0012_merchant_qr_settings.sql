-- scan2pay PSP: what a merchant's QR codes encode (docs/emv.md). 'url' is
-- the bare payment URL, as before; 'emv' an EMVCo merchant-presented payload
-- around it, which needs the category code, country and city. Every row
-- before this migration keeps 'url'.
ALTER TABLE merchants ADD COLUMN qr_format TEXT NOT NULL DEFAULT 'url';
ALTER TABLE merchants ADD COLUMN mcc TEXT;
ALTER TABLE merchants ADD COLUMN country TEXT;
ALTER TABLE merchants ADD COLUMN city TEXT;
ALTER TABLE merchants ADD COLUMN emv_profile TEXT NOT NULL DEFAULT 'scan2pay';
ALTER TABLE merchants ADD COLUMN emv_gui TEXT;
