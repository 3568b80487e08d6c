// Package priority lowers the CPU priority of the whole process, so batch
// work sharing a machine with the speed layer yields the cores to it.
package priority
