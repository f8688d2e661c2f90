import { downGuests } from './vm.ts';
console.log(await downGuests(console.log));
